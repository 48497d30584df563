"""Answers written by a chat model through LangChain, with citations checked afterwards.

The model sees numbered passages and must cite them as [n]. Its reply is trusted only as
far as it can be checked: markers that point at no retrieved passage are removed, the rest
are renumbered 1..m, and each citation gets a quote copied verbatim from its passage. A
sentence of substance that cites no retrieved passage is left out, with a note; a reply
longer than the cap is cut at a sentence end, with a note. A reply that cites nothing, or a
model that fails or misses its deadline, yields the injected fallback's answer.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from bot.deadline import DeadlineExceeded, run_with_deadline
from bot.prompts import CANNOT_ANSWER, Prompt, load_prompt
from bot.summary import Overview
from bot.types import Answerer, Citation, Draft, Passage, TokenCallback, Turn
from dossier_common.errors import ConfigError

log = logging.getLogger(__name__)

ANSWER_PLACEHOLDERS = {"passages", "question", "history", "cannot_answer"}
CONDENSE_PLACEHOLDERS = {"history", "question"}

NOTE_NO_CITATION = (
    "The language model's answer cited no retrieved passage; showing the extractive answer instead."
)

# Extras declared in pyproject.toml; other providers need their own langchain-* package.
_EXTRAS = {"openai": "openai", "azure_openai": "openai", "ollama": "ollama", "anthropic": "anthropic"}

MAX_HISTORY_TURNS = 4
MAX_QUOTE_CHARS = 300

# "[1]", "[1, 2]", "[1; 2]", "[1-3]". A run such as "[1][2]" or "[9] [3]" is one match, so
# it shares one claim and dropping part of it leaves the spacing intact; leading blanks are
# part of the match so that a dropped marker takes its space with it.
_GROUP = r"\[\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*\]"
_MARKER = re.compile(rf"(\s*)({_GROUP}(?:[ \t]*{_GROUP})*)")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n")
_WORD = re.compile(r"\w+")
# Words too common to tell which passage sentence a claim rests on.
_STOPWORD_TEXT = """a an and are as at be by for from has have in is it its of on or that the their this to
was were which with"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


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


def make_chat_model(spec: str, timeout: float, *, max_retries: int = 0) -> BaseChatModel:
    """Build a chat model from "provider:model" (e.g. "openai:gpt-4o-mini").

    OpenAI reads OPENAI_API_KEY and OPENAI_BASE_URL from the environment, which is how an
    OpenAI-compatible server (vLLM, llama.cpp, LM Studio) is reached. Retries default to
    none because a failed call falls back to the extractive answer at once.
    """
    from langchain.chat_models import init_chat_model

    provider = spec.split(":", 1)[0] if ":" in spec else ""
    kwargs: dict[str, Any]
    if provider == "ollama":
        # ChatOllama has no timeout or retry fields; its httpx client takes the timeout.
        kwargs = {"client_kwargs": {"timeout": timeout}}
    else:
        kwargs = {"timeout": timeout, "max_retries": max_retries}
    try:
        return init_chat_model(spec, **kwargs)
    except ImportError as err:
        extra = _EXTRAS.get(provider)
        hint = (
            f"pip install 'dossier[{extra}]'"
            if extra
            else f"pip install langchain-{provider.replace('_', '-')}"
        )
        raise ConfigError(
            f"The language model {spec!r} needs a package that is not installed: {hint}"
        ) from err
    except Exception as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "api_key" in message.lower():
            message += " (an OpenAI-compatible local server accepts any OPENAI_API_KEY value)"
        raise ConfigError(f"Cannot set up the language model {spec!r}: {message}") from err


@functools.lru_cache(maxsize=16)
def _load_cached(name: str, required: frozenset[str], prompts_dir: Path | None) -> Prompt:
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
_ASKED_CHARS = {"answer": 600, "answer_list": 1500, "answer_explain": 1000, "summary": 1500}
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
            name: _load_cached(name, frozenset(ANSWER_PLACEHOLDERS), prompts_dir)
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
        if is_cannot_answer(reply) or (_mentions_cannot_answer(reply) and not _MARKER.search(reply)):
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
                notes.append(_shift_markers(note, first, len(part)))
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
        if len(reply) > 3 * _ASKED_CHARS.get(prompt, 600) and len(reply) <= self.max_answer_chars:
            log.info("language model reply of %d characters for a %s prompt", len(reply), prompt)
            return fall_back(NOTE_RAN_LONG)
        reply, was_cut = cap_reply(reply, self.max_answer_chars)
        if was_cut and _ASKED_CHARS.get(prompt, 600) * 3 < self.max_answer_chars:
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


def _shift_markers(note: str, offset: int, count: int) -> str:
    """A map note's [n] markers (1..count, local to its part) renumbered to the whole list;
    numbers outside the part are left for the citation check to drop."""

    def shift(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(0))]
        return "".join(f"[{n + offset}]" if 1 <= n <= count else f"[{n}]" for n in numbers)

    return re.sub(_GROUP, shift, note)


def condense_question(
    model: BaseChatModel,
    question: str,
    history: Sequence[Turn],
    *,
    prompts_dir: Path | None = None,
    deadline: float | None = None,
) -> str:
    """Rewrite a follow-up into a standalone question; the question unchanged on any error."""
    if not history:
        return question
    try:
        prompt = _load_cached("condense", frozenset(CONDENSE_PLACEHOLDERS), prompts_dir)
        messages = prompt.messages(history=format_history(history), question=question)
        reply = str(run_with_deadline(lambda _expired: model.invoke(messages).text, deadline))
    except Exception as err:
        log.warning("could not condense the question (%s); using it as asked", short_reason(err))
        log.debug("condense failure", exc_info=True)
        return question
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    rewritten = re.sub(r"(?i)^standalone question:\s*", "", lines[0]) if lines else ""
    rewritten = rewritten.strip().strip("\"'“”‘’").strip()
    # A reply much longer than the question is an answer or a ramble, not a rewrite.
    if not rewritten or len(rewritten) > max(500, 4 * len(question)):
        return question
    return rewritten


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
            lines.append(f"Assistant: {_MARKER.sub('', turn.answer).strip()}")
    return "\n".join(lines)


def short_reason(err: BaseException) -> str:
    """A few words for the user: "timeout", "HTTP 500", "connection error"."""
    name = type(err).__name__
    if isinstance(err, TimeoutError) or "timeout" in name.lower():
        return "timeout"
    status = getattr(err, "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    if isinstance(err, ConnectionError) or "connection" in name.lower():
        return "connection error"
    return name


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"\bdo not\b", "don't", text)
    return " ".join(re.findall(r"[a-z0-9']+", _MARKER.sub(" ", text)))


def is_cannot_answer(reply: str) -> bool:
    """True when the reply is the cannot-answer sentence, give or take case, quotes and markers."""
    return _normalise(reply) == _normalise(CANNOT_ANSWER)


def _mentions_cannot_answer(reply: str) -> bool:
    return _normalise(CANNOT_ANSWER) in _normalise(reply)


def _parse_numbers(run: str) -> list[int]:
    """Numbers of a marker run without its outer brackets: "1, 2", "1][3", "2-4"."""
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,;]|\]\s*\[)\s*", run.strip()):
        bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part) if x]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= 20:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def _claim_before(segment: str) -> str:
    """The last sentence of `segment` that has words: what the marker after it supports."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n", segment) if _WORD.search(s)]
    return sentences[-1] if sentences else ""


def clean_citations(reply: str, passages: Sequence[Passage]) -> tuple[str, tuple[Citation, ...]]:
    """Drop markers outside 1..len(passages), renumber the rest by first appearance."""
    renumber: dict[int, int] = {}  # passage index (1-based) -> new number
    claims: dict[int, list[str]] = {}
    previous_claim = ""
    last_end = 0

    def substitute(match: re.Match[str]) -> str:
        nonlocal previous_claim, last_end
        claim = _claim_before(reply[last_end : match.start()]) or previous_claim or reply
        previous_claim = claim
        last_end = match.end()
        kept: list[int] = []
        for number in _parse_numbers(match.group(2)[1:-1]):
            if not 1 <= number <= len(passages):
                log.info("dropped citation [%d]: only %d passages were retrieved", number, len(passages))
                continue
            new = renumber.setdefault(number, len(renumber) + 1)
            claims.setdefault(number, []).append(claim)
            if new not in kept:
                kept.append(new)
        if not kept:
            return ""
        return match.group(1) + "".join(f"[{k}]" for k in kept)

    text = _MARKER.sub(substitute, reply.strip())
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    citations = []
    for number, new in sorted(renumber.items(), key=lambda item: item[1]):
        passage = passages[number - 1]
        quote = best_quote(passage.text, claims[number])
        citations.append(Citation(new, passage.source, passage.location, quote, passage.id))
    return text, tuple(citations)


# Where one claim ends: sentence punctuation (and the markers citing it), or a line break.
_CLAIM_END = re.compile(rf"[.!?]+[\"'”’)]*(?:[ \t]*{_GROUP})*(?:[ \t]*\n+|[ \t]+)|\n+")
_LETTER_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def split_claims(text: str) -> list[str]:
    """`text` cut into sentences and lines; joined back they give `text` exactly."""
    pieces: list[str] = []
    start = 0
    for match in _CLAIM_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [piece for piece in pieces if piece]


def _is_claim(piece: str) -> bool:
    """A sentence that states something: five words, or a figure with words around it.

    Short pieces ("Yes.", "No, it does not.", a list number, "e.g.") carry no claim of their
    own, and a line ending in ":" introduces the cited lines after it.
    """
    stripped = piece.strip()
    if not stripped or stripped.endswith(":") or _mentions_cannot_answer(stripped):
        return False
    words = len(_LETTER_WORD.findall(stripped))
    return words >= 5 or (words >= 2 and any(ch.isdigit() for ch in stripped))


def drop_uncited_claims(text: str) -> tuple[str, int]:
    """Leave out the claims that carry no [n] marker; returns the text and how many went.

    The prompt asks for every claim to be cited. A sentence without a marker is the model's
    own knowledge, a guess, or text injected through a document, and the reader cannot check
    it, so it is not shown. Dropping it (instead of refusing the whole reply) keeps the
    verified part; the note says something was left out.
    """
    kept: list[str] = []
    dropped = 0
    for piece in split_claims(text):
        if _is_claim(piece) and not _MARKER.search(piece):
            dropped += 1
            if piece.endswith("\n") and kept and not kept[-1].endswith("\n"):
                kept.append("\n")  # keep the line structure of what remains
            continue
        kept.append(piece)
    return re.sub(r"\n{3,}", "\n\n", "".join(kept)).strip(), dropped


def cap_reply(reply: str, limit: int) -> tuple[str, bool]:
    """`reply` cut to at most `limit` characters, at the last sentence end when there is one."""
    if len(reply) <= limit:
        return reply, False
    head = reply[:limit]
    ends = [match.end() for match in _CLAIM_END.finditer(head)]
    if ends and ends[-1] > limit // 2:
        return head[: ends[-1]].rstrip(), True
    return head[: limit - 2].rsplit(" ", 1)[0].rstrip() + " …", True  # room for the ellipsis


def passage_sentences(text: str) -> list[str]:
    """Sentences of a passage, each a verbatim substring of it."""
    sentences = []
    start = 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.end() if match else len(text)
        piece = text[start:end].strip()
        start = end
        if _WORD.search(piece):
            sentences.append(piece)
    return sentences


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def best_quote(passage_text: str, claims: Sequence[str]) -> str:
    """The passage sentence sharing the most words with any claim citing it (verbatim)."""
    sentences = passage_sentences(passage_text) or [passage_text.strip()]
    claim_words = [_words(claim) for claim in claims]

    def score(sentence: str) -> tuple[int, float]:
        words = _words(sentence)
        overlap = max((len(words & cw) for cw in claim_words), default=0)
        # Ties go to the denser sentence, which makes the shorter quote.
        return overlap, overlap / (len(words) or 1)

    quote = max(sentences, key=score)  # max keeps the first of equal scores
    if len(quote) > MAX_QUOTE_CHARS:
        # A prefix cut at a word boundary stays a verbatim substring.
        quote = quote[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0]
    return quote
