"""What a question asks for, checked on the sentences that could answer it.

"How many" needs a number, "what percentage" a percentage, "when" a date, a street address an
address, "what is the budget" an amount of money; "who wrote the article" is answered by a byline; a list's items name what it
enumerates; a reason answers a why-question. These rules do not depend on the size of the
collection, which is why abstention built on them carries over from one article to hundreds
of documents (README, "When to say ...").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bot.kinds import DOCUMENT_NOUNS, core, focus, head_noun, head_phrase
from bot.naming import CUE_TERMS
from bot.types import Passage
from index.keywords import terms

# A sentence that gives a reason answers a why-question better than one that only shares its words.
REASON = re.compile(
    r"\b(because|since|reason|why|so that|due to|as a result|therefore|thus|that's why|that’s why|in order to|"
    r"caused?|leads? to|means)\b",
    re.I,
)


REASON_BONUS = 0.05


_HEAD_BONUS = 0.08


_NAME_BONUS = 0.02  # per name, up to three


_NAMED_ITEM = re.compile(r"(?<=[\w,;:] )[A-Z][\w’'-]+|[“\"][^”\"]{2,60}[”\"]")


def names_its_items(
    question: str, kind: str, passages: Sequence[Passage], idf: Callable[[str], float]
) -> bool:
    """Whether the passages speak at all of what the question asks for: every word of what a
    list enumerates ("Which anti-bullying programs ...": no passage says "anti": the documents
    don't say), the most specific word of the topic of an overview ("Summarize the scientific
    studies he cites": nothing "scientific")."""
    if kind == "list":
        wanted = set(terms(head_phrase(question))) - _DESCRIPTIVE
    elif kind == "overview":
        topic = set(terms(focus(question))) - CUE_TERMS
        wanted = {max(topic, key=idf)} if topic else set()
    else:
        return True
    present = set().union(*(terms(p.text) for p in passages)) if passages else set()
    return wanted <= present


# A list of these is a list of names: its items are people, companies, places, works.
_NAMED_KINDS = frozenset(
    terms(
        "examples people persons figures names companies startups firms organizations organisations "
        "agencies groups countries cities provinces regions places operations products brands books "
        "writers authors founders investors scientists leaders officials politicians artists"
    )
)


def asks_for_names(question: str) -> bool:
    """Whether a list question enumerates named things ("Which examples ...", "What
    companies ..."): then each item of the answer names one."""
    head = head_noun(question)
    return head is not None and bool(set(terms(head)) & _NAMED_KINDS)


def inner_names(passages: Sequence[Passage]) -> frozenset[str]:
    """The words the passages capitalise inside a sentence ("than Stripe", "P. G. Wodehouse"),
    lowercased: a sentence that opens with one of them opens with a name."""
    return frozenset(
        m.group(1).lower() for p in passages for m in _INNER.finditer(p.text) if m.group(1) not in _NOT_NAMES
    )


def names_in(sentence: str, known: frozenset[str]) -> set[str]:
    """The proper names of a sentence, lowercased: capitalised words inside it, and a first
    word that is one of the `known` names (capitalised inside some other sentence)."""
    found = {m.group(1).lower() for m in _INNER.finditer(sentence) if m.group(1) not in _NOT_NAMES}
    first = _FIRST_WORD.match(sentence)
    if first and first.group(1).lower() in known:
        found.add(first.group(1).lower())
    return found


# A capitalised word after a lower-case word, a comma or colon, or a single initial ("G. ").
_INNER = re.compile(r"(?:(?<=[a-z0-9,;:)] )|(?<=\b[A-Z]\. ))([A-Z][\w-]*[a-z][\w-]*)")
_FIRST_WORD = re.compile(r"^[^A-Za-z]*([A-Z][\w-]*[a-z][\w-]*)")
# Capitalised inside a sentence without being names.
_NOT_NAMES = frozenset({"I'm", "I've", "I'd", "I'll"})


# Words that say how the asker sees the items, not what the documents call them ("historical
# figures", "the main methods", "famous examples"): a document need not use them.
_DESCRIPTIVE = frozenset(
    terms(
        "historical famous notable well-known known main key major important specific particular "
        "concrete real real-world other different various typical classic prominent"
    )
)


def item_bonus(sentence: str, head: set[str]) -> float:
    bonus = _HEAD_BONUS if head and head & set(terms(sentence)) else 0.0
    return bonus + _NAME_BONUS * min(3, len(_NAMED_ITEM.findall(sentence)))


# What a question asks for decides what an answer must hold: "how many" a number, "what
# percentage" a percentage, "when" a date. A sentence without one does not answer it.
_ASKS_COUNT = re.compile(r"\bhow\s+(many|much)\b", re.I)


_ASKS_PERCENT = re.compile(r"\b(what|which)\s+(percentage|percent|share|proportion|fraction)\b", re.I)


_ASKS_YEAR = re.compile(r"^(when|(in\s+)?(what|which)\s+(year|month|decade|century))\b", re.I)


_COUNT = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|"
    r"millions?|billions?|half|twice|several|few|many|most|all|none|no)\b",
    re.I,
)


_PERCENT = re.compile(r"%|\bper\s?cent\b|\bpercentage\b|\bhalf\b|\bquarter\b|\bthird\b", re.I)


# A year stands between non-digits, not word boundaries: "1958年" (a year in Chinese) is one too.
_DATE = re.compile(
    r"(?<!\d)(1[5-9]|20)\d\d(?!\d)|\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|today|yesterday|ago|century|decade)\b",
    re.I,
)


_ASKS_ADDRESS = re.compile(r"\b(street\s+)?address\b|\bwhat\s+street\b|地址|哪条(街|路)", re.I)


_ADDRESS = re.compile(
    r"\b\d+[A-Za-z]?\s+(\w+\s+){0,3}(street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln|way|court|"
    r"ct|place|pl|square|sq|highway|hwy|parkway|crescent|cres)\b\.?|\b(suite|unit|floor)\s+\d+|"
    # Chinese: a road or street and its number ("人民路十二号", "长安街8号").
    r"(路|街|道|巷)[\d一二三四五六七八九十百千零〇]+号",
    re.I,
)


# "What is the budget of X?", "How much funding ...": an amount of money. Only when the question
# asks for the amount itself ("Why was the budget cut?" does not).
_ASKS_MONEY = re.compile(
    r"^(what\s+(is|was|are|were)\s+|how\s+much\s+)(\S+\s+){0,4}?(budget|funding|revenues?|salary|salaries|"
    r"wages?|price|cost|fees?|income|spending|expenses?|turnover|donations?|money)\b",
    re.I,
)


# A currency, an amount in millions, or a figure with thousands separators (statements print
# "81,797" in a column headed "in millions"); a bare year ("in 2016") is not an amount.
_MONEY = re.compile(
    r"[$€£¥]|\b(dollars?|euros?|pounds?|yuan|renminbi|rmb|yen|usd|eur|gbp|cad|cents?)\b|"
    r"\b\d[\d,.]*\s*(million|billion|thousand|trillion|bn|mn)\b|\b\d{1,3}(,\d{3})+\b",
    re.I,
)


# "Who wrote the article?" asks for a byline: the sentence that says who reported or wrote it.
ASKS_AUTHOR = re.compile(
    rf"^who\s+(wrote|authored|reported|is\s+the\s+(author|writer|reporter)\s+of)\s+(the|this|that)\s+"
    rf"(\w+\s+)?(?:{DOCUMENT_NOUNS})\s*\??$",
    re.I,
)


AUTHORSHIP = re.compile(
    r"\b(reporter|writer|author|correspondent|journalist|columnist|editor)\b|\b(written|reported)\s+by\b",
    re.I,
)


def fits_type(question: str, sentence: str) -> bool:
    if _ASKS_ADDRESS.search(question):
        return bool(_ADDRESS.search(sentence))
    if _ASKS_PERCENT.search(question):
        return bool(_PERCENT.search(sentence))
    if _ASKS_MONEY.search(core(question)):
        return bool(_MONEY.search(sentence))
    if _ASKS_COUNT.search(question):
        return bool(_COUNT.search(sentence))
    if _ASKS_YEAR.search(core(question)):
        return bool(_DATE.search(sentence))
    return True
