"""A model's reply checked against the passages it was given.

Markers that point at no retrieved passage are removed, the rest are renumbered 1..m, and
each citation gets a quote copied verbatim from its passage. Claims that cite nothing can be
left out, and a reply longer than the cap is cut at a sentence end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from bot.prompts import CANNOT_ANSWER
from bot.types import Citation, Passage

log = logging.getLogger(__name__)

MAX_QUOTE_CHARS = 300

# "[1]", "[1, 2]", "[1; 2]", "[1-3]". A run such as "[1][2]" or "[9] [3]" is one match, so
# it shares one claim and dropping part of it leaves the spacing intact; leading blanks are
# part of the match so that a dropped marker takes its space with it.
MARKER_GROUP = r"\[\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*\]"
MARKER = re.compile(rf"(\s*)({MARKER_GROUP}(?:[ \t]*{MARKER_GROUP})*)")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n")
_WORD = re.compile(r"\w+")
# Words too common to tell which passage sentence a claim rests on.
_STOPWORD_TEXT = """a an and are as at be by for from has have in is it its of on or that the their this to
was were which with"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def shift_markers(note: str, offset: int, count: int) -> str:
    """A map note's [n] markers (1..count, local to its part) renumbered to the whole list;
    numbers outside the part are left for the citation check to drop."""

    def shift(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(0))]
        return "".join(f"[{n + offset}]" if 1 <= n <= count else f"[{n}]" for n in numbers)

    return re.sub(MARKER_GROUP, shift, note)


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"\bdo not\b", "don't", text)
    return " ".join(re.findall(r"[a-z0-9']+", MARKER.sub(" ", text)))


def is_cannot_answer(reply: str) -> bool:
    """True when the reply is the cannot-answer sentence, give or take case, quotes and markers."""
    return _normalise(reply) == _normalise(CANNOT_ANSWER)


def mentions_cannot_answer(reply: str) -> bool:
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

    text = MARKER.sub(substitute, reply.strip())
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    citations = []
    for number, new in sorted(renumber.items(), key=lambda item: item[1]):
        passage = passages[number - 1]
        quote = best_quote(passage.text, claims[number])
        citations.append(Citation(new, passage.source, passage.location, quote, passage.id))
    return text, tuple(citations)


# Where one claim ends: sentence punctuation (and the markers citing it), or a line break.
_CLAIM_END = re.compile(rf"[.!?]+[\"'”’)]*(?:[ \t]*{MARKER_GROUP})*(?:[ \t]*\n+|[ \t]+)|\n+")
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
    if not stripped or stripped.endswith(":") or mentions_cannot_answer(stripped):
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
        if _is_claim(piece) and not MARKER.search(piece):
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
