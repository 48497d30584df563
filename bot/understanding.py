"""What a question asks: its kind, the document it names, and whether it wants that document
(or the collection) as a whole."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from bot.kinds import classify, mentions_document
from bot.naming import DocumentName, named_document, titled_document, whole_document, without_title


class Understood(NamedTuple):
    kind: str  # bot.kinds.KINDS
    document: str | None  # the source the question names, answered from alone
    whole: bool  # an overview of that document (or of the collection) as a whole
    narrowed: str  # the question without the title that names its document ("" when none does)


def understand(question: str, names: Sequence[DocumentName], idf: Callable[[str], float]) -> Understood:
    """`names`: how each indexed document is known; `idf`: the keyword index's term weights."""
    kind = classify(question)
    named = named_document(question, names, idf)
    if named is None and mentions_document(question):
        named = only_document(names)  # "the report", and there is one
    by_source = {n.source: n for n in names}
    narrowed = ""
    if named is None:
        titled = titled_document(question, names) if kind in ("factoid", "overview") else None
        if titled is not None:
            # "What is the bus ticket theory of genius?": that essay, as a whole.
            kind, named = "overview", titled
        elif kind != "factoid":
            # A list, comparison, explanation or topic within the essay whose title it
            # spells out (factoids keep searching everywhere: a title's words also name a
            # topic). The sides of a comparison may be the title's own words: they stay.
            named = titled_document(question, names, only=False)
            if named is not None and kind != "compare":
                narrowed = without_title(question, by_source[named])
    whole = kind == "overview" and whole_document(question, by_source.get(named or ""))
    return Understood(kind, named, whole, narrowed)


def only_document(names: Sequence[DocumentName]) -> str | None:
    """The source when exactly one document is indexed ("the report" can only mean it)."""
    return names[0].source if len(names) == 1 else None
