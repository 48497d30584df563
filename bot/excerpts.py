"""The quote shown under a source: the cited sentences, and when the quote is too long to show
whole, an excerpt centred on them (not its first characters). Every front end shows this."""

from __future__ import annotations

from collections.abc import Sequence

from bot.types import Citation

ELLIPSIS = "…"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _window(text: str, a: int, b: int, limit: int) -> str:
    """About `limit` characters of `text` around text[a:b], cut at words, "…" where cut."""
    if b - a >= limit:  # the sentence alone is too long: its start
        lo, hi = a, a + limit
    else:
        room = limit - (b - a)
        lo = max(0, a - room // 2)
        hi = min(len(text), lo + limit)
        lo = max(0, hi - limit)
    if lo > 0:
        space = text.find(" ", lo, a + 1) if lo < a else -1
        lo = space + 1 if space >= 0 else lo
    if hi < len(text):
        space = text.rfind(" ", b if b < hi else lo + 1, hi + 1)
        hi = space if space > lo else hi
    body = text[lo:hi].strip()
    return (ELLIPSIS + " " if lo > 0 else "") + body + (" " + ELLIPSIS if hi < len(text) else "")


def excerpt(text: str, limit: int, spans: Sequence[tuple[int, int]] = ()) -> str:
    """`text` on one line, at most about `limit` characters. `spans` (offsets into `text`) are the
    sentences the answer uses: when the whole does not fit they are shown, joined by "…", or
    if they do not fit either, a window centred on the first. Without spans the start is shown."""
    flat = _flat(text)
    if len(flat) <= limit:
        return flat
    spans = sorted((max(0, a), min(len(text), b)) for a, b in spans if b > a)
    if not spans:
        return flat[: limit - 1].rsplit(" ", 1)[0] + ELLIPSIS
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    pieces = [_flat(text[a:b]) for a, b in merged]
    joined = f" {ELLIPSIS} ".join(pieces)
    if len(joined) + 4 <= limit:
        head = ELLIPSIS + " " if text[: merged[0][0]].strip() else ""
        tail = " " + ELLIPSIS if text[merged[-1][1] :].strip() else ""
        return head + joined + tail
    # One line: positions in the flattened text of the first span.
    a, b = merged[0]
    lo = len(_flat(text[:a] + "x")) - 1
    return _window(flat, lo, lo + len(pieces[0]), max(1, limit - 4))


def shown_quote(citation: Citation, limit: int) -> str:
    """The citation's quote as shown under its source: centred on the sentences the answer uses."""
    return excerpt(citation.quote, limit, citation.spans)


_OPENING_QUOTES = '“"‘«„「『'
_CLOSING_QUOTES = '”"»“」』'


def in_quotes(text: str) -> str:
    """`text` between “ and ”, without doubling a mark the text already opens or closes with
    (a quote that starts with a quoted title reads “110 Overseas,” identified…”, not ““110…)."""
    if not text:
        return text
    opening = "" if text[0] in _OPENING_QUOTES else "“"
    closing = "" if text[-1] in _CLOSING_QUOTES else "”"
    return opening + text + closing
