"""Which document a question names: "the essay on how to disagree", "the report", a file name.

A document is known by its file name and by the heading lines it opens with (a title, a
byline, a date), not by its body: a question that names a document describes it the way
its title does. Descriptors are read from the question ("essay on X", "report called X",
a quoted title, a file name); when one matches a document's name clearly better than any
other, the question is answered from that document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.kinds import DOCUMENT_NOUNS, core
from index.keywords import terms

# "essay on how to disagree", "report called X", "the paper titled X"
_DESCRIBED = re.compile(
    rf"\b(?:{DOCUMENT_NOUNS})\s+(?:on|about|called|titled|entitled|named|regarding|concerning)\s+"
    r"(?P<what>[^,;?!]+)",
    re.I,
)
# A quoted title next to a document noun: 'the report “110 Overseas”', '"Involuntary Returns" report'
_QUOTED = re.compile(
    rf"\b(?:{DOCUMENT_NOUNS})\s+(?:(?:called|titled|entitled|named)\s+)?[“\"]([^”\"]{{3,120}})[”\"]"
    rf"|[“\"]([^”\"]{{3,120}})[”\"]\s+(?:{DOCUMENT_NOUNS})\b",
    re.I,
)
_BYLINE = re.compile(
    r"^(written\s+)?by\s|^\W*\d|^(january|february|march|april|may|june|july|august|september|"
    r"october|november|december)\b",
    re.I,
)
_FILE = re.compile(r"\b[\w.-]+\.(?:txt|md|markdown|html?|pdf|docx)\b", re.I)
# A heading line: short, and not a sentence.
_HEADING_WORDS = 14
_OPENING_CHARS = 400
# A descriptor names a document when it covers this share of the document's name, clearly
# more than the next document's.
_MATCH = 0.6
_MARGIN = 0.2


# Words that ask for an overview or refer to a document, not to a topic.
CUE_TERMS = frozenset(
    terms(
        "summarize summarise summary summaries overview gist tldr recap outline key main major principal "
        "important points point findings finding arguments argument ideas idea messages message claims "
        "takeaways conclusions themes topics thesis give few bullets bullet sentences lines say says cover "
        "covers discuss discusses argue argues tell brief briefly short shortly what whole entire overall "
        "collection everything all " + DOCUMENT_NOUNS.replace("|", " ")
    )
)


@dataclass(frozen=True)
class DocumentName:
    source: str
    title: str
    words: frozenset[str]  # stemmed terms of the file name, title and opening heading lines
    headings: tuple[frozenset[str], ...] = ()  # each title-like line's terms (no bylines, dates)


def document_name(source: str, title: str, text: str) -> DocumentName:
    lines = [line.strip() for line in text[:_OPENING_CHARS].splitlines() if line.strip()]
    headings = [line for line in lines[:4] if len(line.split()) <= _HEADING_WORDS and line[-1] not in ".!?"]
    stem = re.sub(r"[_\-.]+", " ", Path(source).stem)
    titles = [t for t in dict.fromkeys([title, *headings]) if t and not _BYLINE.match(t)]
    return DocumentName(
        source,
        title,
        frozenset(terms(" ".join([stem, title, *headings]))),
        tuple(frozenset(terms(t)) for t in titles),
    )


def descriptors(question: str) -> list[str]:
    """The phrases by which the question describes a document."""
    found = [m.group("what") for m in _DESCRIBED.finditer(question)]
    found += [m.group(1) or m.group(2) for m in _QUOTED.finditer(question)]
    found += [m.group(0) for m in _FILE.finditer(question)]
    return [f.strip() for f in found if f.strip()]


def named_document(
    question: str,
    documents: Sequence[DocumentName],
    idf: Callable[[str], float] = lambda t: 1.0,
) -> str | None:
    """The source the question names, or None (no document named, or no clear match)."""
    if not documents:
        return None
    for phrase in descriptors(question):
        found = _best_match(phrase, documents, idf)
        if found is not None:
            return found
    return None


def titled_document(question: str, documents: Sequence[DocumentName], *, only: bool = True) -> str | None:
    """The document whose title (two words or more) the question spells out: "How does Paul
    Graham contrast the maker's schedule with the manager's schedule?" names the essay
    "Maker's Schedule, Manager's Schedule". With `only`, the question must be nothing but that
    name ("What is Paul Graham's bus ticket theory of genius?"): every other word of it is in
    the document's name (its author, its file name)."""
    asked = set(terms(core(question))) - CUE_TERMS
    found = {
        d.source
        for d in documents
        for words in d.headings
        if len(words) >= 2 and words <= asked and (asked <= d.words or not only)
    }
    return found.pop() if len(found) == 1 else None


def without_title(question: str, document: DocumentName) -> str:
    """The question without the words of the document's title: inside that document they
    match every sentence and tell none apart."""
    title = set().union(*document.headings) if document.headings else set()
    kept = [w for w in question.split() if not (set(terms(w)) and set(terms(w)) <= title)]
    return " ".join(kept)


def whole_document(question: str, document: DocumentName | None) -> bool:
    """Whether an overview question asks about a document as a whole ("Summarize the essay
    on X", "What is this article about?") rather than a topic in it ("Summarize the
    government's response"): nothing is left of it once the words that ask for an overview
    and the words of the document's name are taken away."""
    left = set(terms(question)) - CUE_TERMS
    if document is not None:
        left -= document.words
    return not left


def _best_match(phrase: str, documents: Sequence[DocumentName], idf: Callable[[str], float]) -> str | None:
    wanted = set(terms(phrase))
    if not wanted:
        return None
    total = sum(idf(t) for t in wanted)
    scored = sorted(
        ((sum(idf(t) for t in wanted & d.words) / total, d.source) for d in documents), reverse=True
    )
    best, source = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    return source if best >= _MATCH and best - runner_up >= _MARGIN else None


def find_by_name(name: str, names: Sequence[DocumentName], idf: Callable[[str], float]) -> str | None:
    """The source a user means by `name`: the source itself, its file name, its title, or a
    description that matches one document's name clearly; None when none does."""
    wanted = name.strip()
    for match in (
        lambda n: n.source == wanted,
        lambda n: n.source.lower() == wanted.lower(),
        lambda n: n.source.rsplit("/", 1)[-1].lower() == wanted.lower(),
        lambda n: n.title.lower() == wanted.lower(),
    ):
        found = [n.source for n in names if match(n)]
        if len(found) == 1:
            return found[0]
    return named_document(f"the document called {wanted}", names, idf)
