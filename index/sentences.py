"""Sentence and clause boundaries as character spans: the units the chunker packs, briefs
choose from, sentence vectors are stored for, and the extractive answerer scores."""

from __future__ import annotations

import re

from index.languages import CJK_RUN, append_span, cjk_sentence_spans, has_cjk

# A sentence ends at . ! ? (optionally followed by closing quotes or brackets) when
# whitespace and something that can start a sentence come next. Blank lines always end one,
# and so does a period glued to the next sentence ("repression.According", common in machine
# translation and PDF text).
_BOUNDARY = re.compile(
    r"""(?<=[.!?])(?P<close>["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*•]\s)|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z]{2})"""
)
# Abbreviations after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "no",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "fig",
        "al",
        "inc",
        "ltd",
        "co",
        "corp",
        "u.s",
        "u.k",
        "approx",
        "dept",
        "gov",
    ]
)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans (start, end) of the sentences in text[start:end], trimmed of surrounding space.
    Chinese, Japanese and Korean sentences end at 。！？； (`index.languages.cjk_sentence_spans`),
    which need no space after them: a span with CJK text is split at those as well."""
    end = len(text) if end is None else end
    spans = _split_western(text, start, end)
    if not has_cjk(text[start:end]):
        return spans
    refined: list[tuple[int, int]] = []
    for a, b in spans:
        refined.extend(cjk_sentence_spans(text, a, b) if has_cjk(text[a:b]) else [(a, b)])
    return refined


# A table row as ingest writes it (ingest.loaders.tables), and a Markdown table's: cells apart
# by " | " on one line.
CELL_SEPARATOR = " | "


def _split_western(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences; a line that is a table row is one sentence whatever its periods ("$1.27",
    "Inc."), never glued to the next row."""
    if CELL_SEPARATOR not in text[start:end]:
        return _split_prose(text, start, end)
    spans: list[tuple[int, int]] = []
    prose = start
    pos = start
    while pos < end:
        stop = text.find("\n", pos, end)
        stop = end if stop < 0 else stop
        if CELL_SEPARATOR in text[pos:stop]:
            spans.extend(_split_prose(text, prose, pos))
            append_span(text, spans, pos, stop)
            prose = stop
        pos = stop + 1
    spans.extend(_split_prose(text, prose, end))
    return spans


def _split_prose(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        cut = match.start() + len(match.group("close") or "")
        before = text[cursor : match.start()].rsplit(None, 1)
        word = before[-1].rstrip(".").lower() if before else ""
        if match.group("close") == "" and word in _ABBREVIATIONS:
            continue
        append_span(text, spans, cursor, cut)
        cursor = match.end()
    append_span(text, spans, cursor, end)
    return spans


# Web pages flattened to text often glue a section heading onto the next sentence with no
# space ("Two TypesI think you only need..."). A heading is a few words at the start of a
# sentence that end in a lowercase letter directly followed by a word that usually opens a
# sentence; a lone lowercase word glued the same way ("reportThe paper, entitled...") is the
# remains of a link or caption. ("In" and "A" are left out: "LinkedIn is", "NASA" stay whole.)
_GLUED_HEADING = re.compile(
    r"^(?:(?=[A-Z0-9])(?:[^\s.!?]+\s+){0,5}?[^\s.!?]*?[a-z]|[a-z]{3,})(?=(?:I|The|What|So|But|And|If|It|This|That|"
    r"There|These|Those|When|Why|How|We|You|My|One|Another|For|Most|Some|Now|Then|Our|They|He|She|"
    r"Many|All|Even|Yet|Once|Each|Every|Here|Which|Who|Where|Because|Since|Although|While|After|"
    r"Before|Like|Unlike|Suppose|Imagine|Instead|Perhaps|Maybe|Actually|Of|To|As|At|By)\b[\s,'’])"
)


# A period followed by a comma or a lowercase word: two broken pieces of text run together
# (". , held a", "April 2021. has been used to"), common in machine translation.
SEAM = re.compile(r"\.\s+(,|[a-z])")


def glued_heading_length(sentence: str) -> int:
    """Length of a heading glued to the front of `sentence` (0 when there is none)."""
    match = _GLUED_HEADING.match(sentence)
    if match is None or len(sentence) - match.end() < 20:
        return 0
    return match.end()


def sentence_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, kind) of each sentence (kind 0) and, for long sentences, its clauses
    (kind 1): the units the extractive answerer scores."""
    out: list[tuple[int, int, int]] = []
    for a, b in split_sentences(text):
        out.append((a, b, 0))
        out.extend((a + x, a + y, 1) for x, y in clause_spans(text[a:b]))
    return out


# Characters of Chinese or Japanese text per English word, for the length rules below: a CJK
# sentence is one "word" to split() (40 characters are about 16 words).
CJK_CHARS_PER_WORD = 2.5
# Where a clause ends: , ; : and dashes followed by space; in CJK text the full-width ，；：、
# need no space after them.
_CLAUSE_CUT = re.compile(r"[,;:—–]\s+|[，；：、]\s*")


def text_length(text: str) -> float:
    """Length in words: split() words, and a CJK run's characters divided by
    `CJK_CHARS_PER_WORD`."""
    if not has_cjk(text):
        return len(text.split())
    cjk = sum(len(run) for run in CJK_RUN.findall(text))
    return len(CJK_RUN.sub(" ", text).split()) + cjk / CJK_CHARS_PER_WORD


def clause_spans(sentence: str) -> list[tuple[int, int]]:
    """Clauses of a long sentence (at least 16 words or 40 CJK characters; cut at , ; : and
    dashes, and at ，；：、), each of at least five words (or 13 CJK characters): a long sentence's
    vector is diluted by its other content, a clause's much less."""
    if text_length(sentence) < 16:
        return []
    if CELL_SEPARATOR in sentence:
        return _row_prefixes(sentence)
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in _CLAUSE_CUT.finditer(sentence):
        if text_length(sentence[start : cut.start()]) >= 5:
            spans.append((start, cut.start()))
            start = cut.end()
    if spans and start < len(sentence):
        if text_length(sentence[start:]) >= 5:
            spans.append((start, len(sentence)))
        else:
            spans[-1] = (spans[-1][0], len(sentence))
    return spans if len(spans) > 1 else []


def _row_prefixes(row: str) -> list[tuple[int, int]]:
    """A long table row's "clauses": the row from its label to the end of each cell, so the one
    that matches a question best still opens with the row's label ("Gross margin | Three Months
    Ended July 1, 2023: 36,413") and a quote cut to it says what its figure is."""
    ends = [*(m.start() for m in re.finditer(re.escape(CELL_SEPARATOR), row)), len(row)][1:]
    return [(0, e) for e in ends] if len(ends) > 1 else []
