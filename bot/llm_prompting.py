"""What the chat model is asked: the prompt for each kind of question, loaded once, and the
passages and conversation written out for it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from bot.llm_citations import MARKER
from bot.prompts import Prompt, load_prompt
from bot.types import Passage, Turn

ANSWER_PLACEHOLDERS = {"passages", "question", "history", "cannot_answer"}
CONDENSE_PLACEHOLDERS = {"history", "question"}

MAX_HISTORY_TURNS = 4


@functools.lru_cache(maxsize=16)
def cached_prompt(name: str, required: frozenset[str], prompts_dir: Path | None) -> Prompt:
    return load_prompt(name, set(required), prompts_dir)


# The prompt for each kind of question (bot.kinds), and about how long an answer it asks for:
# a reply three times longer has not done what it was asked (a weak model echoing the
# passages back, or rambling) and is not shown.
PROMPT_OF_KIND = {
    "factoid": "answer",
    "yesno": "answer",
    "list": "answer_list",
    "overview": "answer_list",
    "why": "answer_explain",
    "how": "answer_explain",
    "compare": "answer_explain",
    "multihop": "answer_explain",
}
SUMMARY_PROMPTS = ("summary", "summary_map", "summary_reduce")
ASKED_CHARS = {"answer": 600, "answer_list": 1500, "answer_explain": 1000, "summary": 1500}


def format_passages(passages: Sequence[Passage]) -> str:
    blocks = []
    for n, passage in enumerate(passages, start=1):
        where = ", ".join(part for part in (passage.source, passage.location) if part)
        blocks.append(f"[{n}] ({where})\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def format_history(history: Sequence[Turn]) -> str:
    if not history:
        return "(none)"
    lines = []
    for turn in history[-MAX_HISTORY_TURNS:]:
        lines.append(f"User: {turn.question}")
        if turn.answer:
            # Old markers number into old passages; left in, the model would copy them.
            lines.append(f"Assistant: {MARKER.sub('', turn.answer).strip()}")
    return "\n".join(lines)
