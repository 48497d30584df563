"""Which of the scored sentences an answer quotes, by kind of question.

A factoid quotes its best one to three sentences; a list every sentence that names an item
(for a list of named things, one sentence per new name); an explanation, comparison or
two-part question a set that together covers its parts, within a budget of sentences. No
sentence is quoted twice, even when overlapping passages hold it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.answer_types import inner_names, names_in
from bot.kinds import head_noun
from bot.quotes import MAX_CHARS, ScoredSentence, first_sentences, same_sentence, sentence_count
from bot.types import Passage
from index.keywords import terms
from index.sentences import text_length

_MAX_SENTENCES = 3
# A second sentence joins the answer when it scores within this of the best one (it often
# holds the other half of the answer, or a second reading of the question); a third only when
# nearly as good as the best.
_SECOND_MARGIN = 0.12
THIRD_MARGIN = 0.05


def select_factoid(scored: list[ScoredSentence], bar: float) -> list[ScoredSentence]:
    """The best sentence, and up to two more that score nearly as well."""
    best = scored[0].score
    chosen = [scored[0]]
    length = len(scored[0].text)
    for s in scored[1:]:
        margin = _SECOND_MARGIN if len(chosen) == 1 else THIRD_MARGIN
        if len(chosen) >= _MAX_SENTENCES or s.score < max(bar, best - margin):
            continue
        if (
            text_length(s.text) < 6
            or length + len(s.text) > MAX_CHARS
            or any(same_sentence(s, c) for c in chosen)
        ):
            continue
        chosen.append(s)
        length += len(s.text)
    return chosen


def select_covering(
    scored: list[ScoredSentence],
    question: str,
    kind: str,
    bar: float,
    passages: Sequence[Passage],
    idf: Callable[[str], float],
    sides: Sequence[ScoredSentence] = (),
) -> list[ScoredSentence]:
    """A set of sentences that together cover the question: after the best one, each
    further sentence either holds question terms the chosen ones do not (the other side
    of a comparison, the second half of a two-part question) or, for a list, scores close
    to the best (another item). Repeats are dropped."""
    limit, margin = _KIND_LIMITS[kind]
    weights = {t: idf(t) for t in set(terms(question)) - ASKING_TERMS}
    total = sum(weights.values()) or 1.0
    best = scored[0].score
    floor = max(bar, best - margin)
    chosen = [scored[0]]
    covered = set(scored[0].matched)
    length = len(scored[0].text)
    budget = _KIND_SENTENCES.get(kind, 99) - sentence_count(scored[0])
    for s in sides:
        if (
            s.score >= bar * _SIDE_SHARE
            and not any(same_sentence(s, c) or _overlaps(s, c, passages) for c in chosen)
            and sentence_count(s) <= budget
        ):
            chosen.append(s)
            covered |= s.matched
            length += len(s.text)
            budget -= sentence_count(s)
    # A list's items may score well below the sentence that announces them ("three causes
    # of damage"): any sentence naming an instance of what it enumerates qualifies.
    head = set(terms(head_noun(question) or "")) if kind == "list" else set()
    for s in scored[1:]:
        if len(chosen) >= limit or s.score < bar:
            break
        if budget >= 1 and sentence_count(s) > budget:  # a read-on unit keeps what fits
            s = first_sentences(s, budget)
        if s.score < floor and not (head and head & set(terms(s.text))):
            continue
        if (
            text_length(s.text) < 6
            or any(same_sentence(s, c) or _overlaps(s, c, passages) for c in chosen)
            or length + len(s.text) > _KIND_CHARS.get(kind, 1400)
            or sentence_count(s) > budget
        ):
            continue
        gain = sum(weights.get(t, 0.0) for t in s.matched - covered) / total
        if kind in ("list", "overview", "compare") or gain >= _MIN_GAIN or s.score >= best - THIRD_MARGIN:
            chosen.append(s)
            covered |= s.matched
            length += len(s.text)
            budget -= sentence_count(s)
    return chosen


BULLET_KINDS = frozenset({"list", "overview"})


def select_names(
    scored: list[ScoredSentence], question: str, bar: float, passages: Sequence[Passage]
) -> list[ScoredSentence]:
    """A list of named things ("Which examples ...", "What companies ..."): the best sentence,
    then, best first, sentences that each name something not named yet. Below the bar a
    sentence qualifies only next to one already chosen: the examples of a list are usually
    given one after another."""
    known = inner_names(passages)
    names = {id(s): names_in(s.text, known) for s in scored}
    seen = names_in(question, known) | names[id(scored[0])]
    chosen = [scored[0]]
    length = len(scored[0].text)
    limit = _KIND_LIMITS["list"][0]
    pending = scored[1:]
    while len(chosen) < limit:
        pick = next(
            (
                s
                for s in pending
                if names[id(s)] - seen
                and (s.score >= bar or any(_near(s, c, passages) for c in chosen))
                and text_length(s.text) >= 6
                and length + len(s.text) <= _KIND_CHARS["list"]
                and not any(same_sentence(s, c) or _overlaps(s, c, passages) for c in chosen)
            ),
            None,
        )
        if pick is None:
            break
        pending = [s for s in pending if s is not pick]
        chosen.append(pick)
        seen |= names[id(pick)]
        length += len(pick.text)
    return chosen


def _near(a: ScoredSentence, b: ScoredSentence, passages: Sequence[Passage]) -> bool:
    """Whether two sentences of one document are at most a short sentence or two apart."""
    (source_a, a0, a1), (source_b, b0, b1) = _in_document(a, passages), _in_document(b, passages)
    return source_a == source_b and (0 <= a0 - b1 <= _NEAR_CHARS or 0 <= b0 - a1 <= _NEAR_CHARS)


_NEAR_CHARS = 300


def _overlaps(a: ScoredSentence, b: ScoredSentence, passages: Sequence[Passage]) -> bool:
    """Whether two quotes share text of one document (overlapping passages quote it twice)."""
    (source_a, a0, a1), (source_b, b0, b1) = _in_document(a, passages), _in_document(b, passages)
    return source_a == source_b and a0 < b1 and b0 < a1


def _in_document(s: ScoredSentence, passages: Sequence[Passage]) -> tuple[str, int, int]:
    """The sentence's source and its offsets in that source's text."""
    p = passages[s.passage]
    return p.source, p.start + s.start, p.start + s.end


# A side of a comparison is quoted when its best sentence scores at least this share of the
# threshold (it is backed by the best sentence, which cleared the threshold itself).
_SIDE_SHARE = 0.6
# Per kind: how many sentences at most, and how far below the best one a sentence may score.
_KIND_LIMITS = {
    "yesno": (2, 0.08),
    "why": (3, 0.12),
    "how": (3, 0.12),
    "compare": (4, 0.2),
    "multihop": (4, 0.15),
    "list": (8, 0.2),
    "overview": (5, 0.15),
}
_KIND_CHARS = {"list": 2000}  # the most an answer quotes (1,400 characters for other kinds)
_MIN_GAIN = 0.1
# Words of the question that ask rather than say what about: covering them adds nothing.
ASKING_TERMS = frozenset(terms("many much long often kind kinds type types way ways"))
# At most this many sentences in all (issue 11: an explanation, a comparison or a two-part
# answer quotes up to four).
_KIND_SENTENCES = {
    "yesno": 3,
    "why": 4,
    "how": 4,
    "compare": 4,
    "multihop": 4,
}  # share of the question's (IDF-weighted) terms a further sentence must add
