"""Text made safe to print on a terminal.

File names, document titles, fetched pages, LLM replies and questions come from people we
do not trust. Printed raw, an escape sequence in any of them can clear the screen, move the
cursor to forge an answer, rename the window or write to the clipboard (OSC 52). Everything
the CLI, the chat and the watcher print goes through `printable` first (or, for JSON,
`json_printable`).
"""

from __future__ import annotations

import re

# Whole sequences go, so that what is left reads as text: CSI (colours, cursor moves,
# clear screen), OSC up to its terminator (window title, hyperlink, clipboard), the DCS/SOS/
# PM/APC strings, the remaining two-character escapes, and 8-bit CSI.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one 8-bit character
)
# Then any control character left, except tab and newline: C0 (with CR, which lets a line
# overwrite itself, and a lone ESC), DEL, C1 (8-bit CSI and OSC on some terminals), and the
# bidirectional overrides and isolates that make text display in another order than it reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without escape sequences or control characters other than tab and newline."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def one_line(text: str) -> str:
    """`printable(text)` on one line: a newline in a file name must not forge an output line."""
    return " ".join(printable(text).split())


def json_printable(text: str) -> str:
    """JSON text with the characters a terminal acts on escaped (the data stays the same).

    `json.dumps(..., ensure_ascii=False)` already escapes C0 controls; DEL, C1 and bidi
    controls would be printed raw. In JSON they can only occur inside strings, where
    `\\uXXXX` means the same character.
    """
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


__all__ = ["json_printable", "one_line", "printable"]
