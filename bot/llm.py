"""Answers written by a chat model through LangChain, with citations checked afterwards.

The model sees numbered passages and must cite them as [n]. Its reply is trusted only as
far as it can be checked: markers that point at no retrieved passage are removed, the rest
are renumbered 1..m, and each citation gets a quote copied verbatim from its passage. A
sentence of substance that cites no retrieved passage is left out, with a note; a reply
longer than the cap is cut at a sentence end, with a note. A reply that cites nothing, or a
model that fails or misses its deadline, yields the injected fallback's answer.

The checks are in `bot.llm_citations`, the prompts per kind in `bot.llm_prompting`, the
model's construction and the follow-up rewrite in `bot.llm_client`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from bot.deadline import DeadlineExceeded, run_with_deadline
from bot.llm_citations import (
    MARKER,
    cap_reply,
    clean_citations,
    drop_uncited_claims,
    is_cannot_answer,
    mentions_cannot_answer,
    shift_markers,
)
from bot.llm_client import short_reason
from bot.llm_prompting import (
    ANSWER_PLACEHOLDERS,
    ASKED_CHARS,
    PROMPT_OF_KIND,
    SUMMARY_PROMPTS,
    cached_prompt,
    format_history,
    format_passages,
)
from bot.prompts import CANNOT_ANSWER
from bot.summary import Overview
from bot.types import Answerer, Draft, Passage, StopAnswer, TokenCallback, Turn

log = logging.getLogger(__name__)

NOTE_NO_CITATION = (
    "The language model's answer cited no retrieved passage; showing the extractive answer instead."
)


# Replies longer than this are cut (DOSSIER_LLM_MAX_ANSWER_CHARS): a passage saying "repeat
# this 10,000 times" must not flood a channel.
DEFAULT_MAX_ANSWER_CHARS = 3000


def note_uncited(count: int) -> str:
    sentences = "sentence" if count == 1 else "sentences"
    return f"Left out {count} {sentences} of the language model's answer that cited no passage."


def note_cut(limit: int) -> str:
    return f"The language model's answer was longer than {limit:,} characters and was cut."


def note_model_failed(reason: str) -> str:
    return f"The language model failed ({reason}); showing the extractive answer."


# A long document is summarized in parts of this many passages (map), then from the notes
# (reduce); at most _MAP_PARTS parts, spread over the document.
MAP_GROUP = 12
_MAP_PARTS = 8
NOTE_RAN_LONG = (
    "The language model's answer ran far past the length asked for; showing the extractive answer."
)
NOTE_ECHO = (
    "The language model's answer repeated the passages instead of answering; showing the extractive answer."
)
NOTE_OVERRULED = (
    "The language model found no answer, but these passages state one; showing the extractive answer."
)
# Lines of the prompt's passage list ("[2] (report.pdf, p. 3)") or its section labels in a reply.
_ECHO = re.compile(r"(?m)^\s*\[\d+\]\s*\([^()\n]*\)\s*$|^\s*(Passages|Question|Conversation so far):\s*$")


class LLMAnswerer:
    """Implements `Answerer` with a chat model; never raises for a model failure."""

    def __init__(
        self,
        model: BaseChatModel,
        fallback: Answerer,
        *,
        name: str = "llm",
        prompts_dir: Path | None = None,
        deadline: float | None = None,
        max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    ) -> None:
        self.model = model
        self.fallback = fallback
        self.name = name
        # Seconds for the whole call: the client's own timeout applies to each read only.
        self.deadline = deadline
        self.max_answer_chars = max_answer_chars
        # Loaded now so that a broken prompt file stops start-up, not the first question.
        self.prompts = {
            name: cached_prompt(name, frozenset(ANSWER_PLACEHOLDERS), prompts_dir)
            for name in dict.fromkeys(["answer", *PROMPT_OF_KIND.values(), *SUMMARY_PROMPTS])
        }
        self.prompt = self.prompts["answer"]

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
        kind: str = "factoid",
        narrowed: str = "",
    ) -> Draft:
        """Ask the model; tokens streamed to `on_token` are the raw reply, the Draft is final.

        The returned Draft may differ from what was streamed (markers renumbered, or the
        fallback's answer), so front ends should replace the streamed text with it.
        """
        if not passages:
            return Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        prompt = PROMPT_OF_KIND.get(kind, "answer")

        def fall_back(note: str) -> Draft:
            # No on_token: tokens of the failed reply may already be on screen, and the caller
            # renders the returned Draft in any case.
            draft = self.fallback.answer(question, passages, history, kind=kind, narrowed=narrowed)
            return replace(draft, note=f"{note} {draft.note}".strip())

        reply = self._ask(prompt, format_passages(passages), question, history, on_token)
        if isinstance(reply, Failure):
            return fall_back(note_model_failed(reply.reason))
        if is_cannot_answer(reply) or (mentions_cannot_answer(reply) and not MARKER.search(reply)):
            # The model's "don't say" does not overrule passages that plainly answer.
            draft = fall_back(NOTE_OVERRULED)
            return draft if not draft.abstained else Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        return self._checked(reply, prompt, passages, fall_back)

    def summarize(
        self,
        question: str,
        passages: Sequence[Passage],
        extractive: Overview,
        on_token: TokenCallback | None = None,
    ) -> Overview:
        """A summary of `passages` (a document's chunks, or one passage per document): in one
        call, or for a long document notes on each part, then a summary of the notes. Its
        citations are checked like an answer's; `extractive` (the brief) is the fallback."""
        failed: list[str] = []

        def fall_back(note: str) -> Draft:
            failed.append(note)
            return replace(extractive.draft, note=f"{note} {extractive.draft.note}".strip())

        draft = self._summary(question, passages, fall_back, on_token) if passages else None
        if draft is None:
            return extractive
        return Overview(draft, extractive.passages) if failed else Overview(draft, tuple(passages))

    def _summary(
        self,
        question: str,
        passages: Sequence[Passage],
        fall_back: Callable[[str], Draft],
        on_token: TokenCallback | None,
    ) -> Draft:
        if len(passages) <= MAP_GROUP:
            reply = self._ask("summary", format_passages(passages), question, (), on_token)
        else:
            notes = []
            for first in _spread(len(passages), MAP_GROUP, _MAP_PARTS):
                part = passages[first : first + MAP_GROUP]
                note = self._ask("summary_map", format_passages(part), question, (), None)
                if isinstance(note, Failure):
                    return fall_back(note_model_failed(note.reason))
                notes.append(shift_markers(note, first, len(part)))
            reply = self._ask("summary_reduce", "\n".join(notes), question, (), on_token)
        if isinstance(reply, Failure):
            return fall_back(note_model_failed(reply.reason))
        return self._checked(reply, "summary", passages, fall_back)

    def _ask(
        self,
        prompt: str,
        passages: str,
        question: str,
        history: Sequence[Turn],
        on_token: TokenCallback | None,
    ) -> str | Failure:
        messages = self.prompts[prompt].messages(
            passages=passages, question=question, history=format_history(history), cannot_answer=CANNOT_ANSWER
        )
        try:
            return self._call_within_deadline(messages, on_token)
        except StopAnswer:
            raise  # the person stopped it: no fallback answer either
        except Exception as err:
            reason = short_reason(err)
            log.warning("language model call failed: %s", reason)
            log.debug("language model failure", exc_info=True)
            return Failure(reason)

    def _checked(
        self, reply: str, prompt: str, passages: Sequence[Passage], fall_back: Callable[[str], Draft]
    ) -> Draft:
        """The reply as far as it can be verified, or the fallback's answer."""
        if _ECHO.search(reply):
            log.info("language model reply echoes the passages: %r", reply[:200])
            return fall_back(NOTE_ECHO)
        if len(reply) > 3 * ASKED_CHARS.get(prompt, 600) and len(reply) <= self.max_answer_chars:
            log.info("language model reply of %d characters for a %s prompt", len(reply), prompt)
            return fall_back(NOTE_RAN_LONG)
        reply, was_cut = cap_reply(reply, self.max_answer_chars)
        if was_cut and ASKED_CHARS.get(prompt, 600) * 3 < self.max_answer_chars:
            return fall_back(NOTE_RAN_LONG)
        text, citations = clean_citations(reply, passages)
        if not citations:
            log.info("language model reply cited no retrieved passage: %r", reply[:200])
            return fall_back(NOTE_NO_CITATION)
        text, dropped = drop_uncited_claims(text)
        notes = [note_uncited(dropped)] if dropped else []
        if was_cut:
            notes.append(note_cut(self.max_answer_chars))
        return Draft(text=text, citations=citations, abstained=False, note=" ".join(notes))

    def _call_within_deadline(self, messages: list[tuple[str, str]], on_token: TokenCallback | None) -> str:
        def work(expired: Callable[[], bool]) -> str:
            def relay(piece: str) -> None:
                # Tokens after the deadline would land on screen after the fallback's answer.
                if expired():
                    raise DeadlineExceeded("stream stopped at the deadline")
                assert on_token is not None
                on_token(piece)

            return self._call(messages, relay if on_token is not None else None)

        return run_with_deadline(work, self.deadline)

    def _call(self, messages: list[tuple[str, str]], on_token: TokenCallback | None) -> str:
        if on_token is None:
            return str(self.model.invoke(messages).text)
        pieces: list[str] = []
        size = 0
        for chunk in self.model.stream(messages):
            piece = str(chunk.text)
            if piece:
                pieces.append(piece)
                on_token(piece)
                size += len(piece)
                if size > self.max_answer_chars:
                    break  # the rest would be cut anyway; stop paying for it
        return "".join(pieces)


@dataclass(frozen=True)
class Failure:
    """A model call that failed (timeout, provider error), with its short reason."""

    reason: str


def _spread(total: int, size: int, parts: int) -> list[int]:
    """Start offsets of at most `parts` groups of `size` spread evenly over `total` items."""
    starts = list(range(0, total, size))
    if len(starts) <= parts:
        return starts
    step = len(starts) / parts
    return [starts[int(i * step)] for i in range(parts)]
