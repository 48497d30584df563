"""Prompt templates kept as plain text files in `prompts/`, checked when they are loaded.

A template holds named placeholders in `{curly}` braces (literal braces are doubled).
A line holding only `---` splits it into a system part (above) and a user part (below);
without it the whole file is the user message.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from pathlib import Path

from dossier_common.errors import ConfigError

log = logging.getLogger(__name__)

# Shared by the answer prompt, the answerers and the tests: the exact sentence that means
# "the retrieved passages do not hold the answer".
CANNOT_ANSWER = "The documents don't say."

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

SYSTEM_SEPARATOR = "---"


@dataclass(frozen=True)
class Prompt:
    name: str
    path: Path
    template: str
    placeholders: frozenset[str]

    def format(self, **values: str) -> str:
        """The whole template filled in (system and user parts, separator removed)."""
        return "\n\n".join(text for _, text in self.messages(**values))

    def messages(self, **values: str) -> list[tuple[str, str]]:
        """`[("system", ...), ("human", ...)]`, the form chat models accept directly."""
        missing = self.placeholders - values.keys()
        if missing:
            raise ValueError(f"Prompt {self.name!r} needs values for: {', '.join(sorted(missing))}")
        system, user = _split(self.template)
        out: list[tuple[str, str]] = []
        if system:
            out.append(("system", system.format(**values).strip()))
        out.append(("human", user.format(**values).strip()))
        return out


def _split(template: str) -> tuple[str, str]:
    lines = template.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == SYSTEM_SEPARATOR:
            return "\n".join(lines[:i]), "\n".join(lines[i + 1 :])
    return "", template


def find_placeholders(template: str, where: str = "template") -> set[str]:
    """Names of the `{placeholders}` in a template; ConfigError for anything malformed."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as err:
        raise ConfigError(
            f"Prompt {where} is malformed ({err}); write literal braces as {{{{ and }}}}"
        ) from err
    names: set[str] = set()
    for field in fields:
        # Positional `{}` and attribute/index access (`{a.b}`, `{a[0]}`) would fail or leak
        # object internals at format time, so only plain identifiers are placeholders.
        if not field.isidentifier():
            raise ConfigError(f"Prompt {where} has an invalid placeholder {{{field}}}")
        names.add(field)
    return names


def load_prompt(name: str, required: set[str], prompts_dir: Path | None = None) -> Prompt:
    """Read `prompts/{name}.txt` and check its placeholders are exactly `required`."""
    folder = prompts_dir if prompts_dir is not None else PROMPTS_DIR
    path = folder / f"{name}.txt"
    try:
        template = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"Cannot read prompt file {path}: {err.strerror or err}") from err
    found = find_placeholders(template, str(path))
    missing = sorted(required - found)
    unknown = sorted(found - required)
    if missing:
        names = ", ".join("{" + n + "}" for n in missing)
        raise ConfigError(f"Prompt file {path} lacks the placeholder(s) {names}")
    if unknown:
        names = ", ".join("{" + n + "}" for n in unknown)
        allowed = ", ".join("{" + n + "}" for n in sorted(required))
        raise ConfigError(f"Prompt file {path} has unknown placeholder(s) {names}; allowed: {allowed}")
    log.debug("loaded prompt %s from %s", name, path)
    return Prompt(name=name, path=path, template=template, placeholders=frozenset(found))
