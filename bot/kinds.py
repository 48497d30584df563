"""What kind of question this is, by offline rules (which document it names: bot.naming).

The kind decides how much the answerer reads and how many sentences it quotes: a factoid
wants the one sentence that holds the fact, a list wants a set of sentences that together
cover it, a comparison wants both sides, an overview wants a document's key sentences.
"""

from __future__ import annotations

import re

KINDS = ("factoid", "overview", "list", "yesno", "why", "how", "compare", "multihop")

# Nouns by which a question refers to a document rather than to its content.
DOCUMENT_NOUNS = (
    "article|report|essay|document|paper|post|file|text|piece|story|memo|letter|book|"
    "chapter|study|filing|page|transcript|documents|articles|reports|essays|files|papers"
)
_DOC_NOUN = re.compile(rf"\b(?:{DOCUMENT_NOUNS})\b", re.I)

_OVERVIEW = re.compile(
    r"\b(summari[sz]e|summary|summarise|overview|gist|tl;?dr|recap|outline)\b"
    r"|\b(key|main|major|principal|most\s+important)\s+(points?|findings?|arguments?|ideas?|messages?|"
    r"claims?|takeaways?|conclusions?|themes?|topics?|thesis|theses)\b"
    rf"|\bwhat\s+(is|are|was|were)\s+(this|the|these|that|those|his|her|their)\s+(\w+\s+)?(?:{DOCUMENT_NOUNS})\s+about\b"
    rf"|\bwhat\s+does\s+(this|the|that)\s+(\w+\s+)?(?:{DOCUMENT_NOUNS})\s+(say|cover|argue|claim|discuss)\s*\??$"
    r"|\bin\s+a\s+few\s+(bullets|points|sentences|lines)\b",
    re.I,
)
_COMPARE = re.compile(
    r"\b(compare[sd]?|comparing|comparison|contrast(s|ed|ing)?|differ(s|ed|ence|ences|ent from)?|"
    r"versus|vs\.?|similarit(y|ies)|distinguish(es)?)\b",
    re.I,
)
_WH = r"(who|whom|whose|what|which|where|when|why|how(?:\s+(?:many|much|long|old|often|far))?)"
# Two questions in one: "who ... and where ...", "which agencies and which provinces ...",
# "how many stations ..., and in how many countries?"
_MULTIHOP = re.compile(rf"\b{_WH}\b.+?(,\s*|\s)and\s+(in\s+|from\s+|for\s+|at\s+|by\s+)?{_WH}\b", re.I)
_YESNO = re.compile(
    r"^(is|are|was|were|does|do|did|can|could|has|have|had|will|would|should|may|might|must|isn't|aren't|"
    r"doesn't|don't|didn't|wasn't|weren't)\b",
    re.I,
)
_WHY = re.compile(
    r"^why\b|\bwhat\s+(is|are|was|were)\s+the\s+(main\s+)?reasons?\b|\breasons?\s+(why|for)\b", re.I
)
_HOW = re.compile(r"^how\b(?!\s+(many|much|long|old|often|far|big|large|tall|soon)\b)", re.I)
_LIST = re.compile(
    r"^(list|name|enumerate|itemi[sz]e)\b"
    r"|^(give|tell)\s+(me\s+)?(a\s+list|the\s+list|all|some|the)\b.*\b(examples|ways|reasons|names|kinds|types)\b"
    r"|^(which|what)\s+(\w+[\s-]+){0,3}?(\w+(?<!s)s|people|media|criteria|children|men|women)\s+"
    r"((of|in|for|from|on|to|by)\s+(\w+\s+){1,3}?)?"
    r"(are|were|do|does|did|is|has|have|had|can|could|should|would|will|might)\b"
    r"|^what\s+(are|were)\s+(the|some|all)\s+(\w+\s+){0,2}(\w+(?<!s)s|criteria|people)\b"
    r"|\b(what|which)\s+examples\b|\bexamples\s+of\b",
    re.I,
)
# A leading "In his essay on X, ..." or "According to the report, ..." frames the question;
# the kind is read from what follows it.
_FRAME = re.compile(r"^(in|according\s+to|from|per|based\s+on|within)\b[^,?]{3,120},\s*", re.I)


def core(question: str) -> str:
    """The question without a leading frame ("In the essay on X, how does ..." -> "how does ...")."""
    text = " ".join(question.split())
    framed = _FRAME.match(text)
    return text[framed.end() :] if framed else text


def classify(question: str) -> str:
    """One of KINDS."""
    text = " ".join(question.split())
    if _CJK.search(text):
        return _classify_chinese(text)
    body = core(text)
    if _OVERVIEW.search(text) and not _YESNO.match(body):
        return "overview"
    if _COMPARE.search(body):
        return "compare"
    if _MULTIHOP.search(body):
        return "multihop"
    if _LIST.search(body):
        return "list"
    if _YESNO.match(body):
        return "yesno"
    if _WHY.search(body):
        return "why"
    if _HOW.match(body):
        return "how"
    return "factoid"


_CJK = re.compile(r"[\u3400-\u9fff]")
# The same kinds asked in Chinese, by their usual words (no overview: it names a document).
_ZH_KINDS = (
    ("compare", re.compile(r"比较|相比|区别|有何不同|有什么不同")),
    ("list", re.compile(r"列出|列举|有哪些|哪些")),
    ("why", re.compile(r"为什么|为何|什么原因")),
    ("how", re.compile(r"如何|怎样|怎么")),
    ("yesno", re.compile(r"吗[？?]?$|是否|有没有")),
)


def _classify_chinese(text: str) -> str:
    for kind, cue in _ZH_KINDS:
        if cue.search(text):
            return kind
    return "factoid"


def mentions_document(question: str) -> bool:
    """Whether the question refers to a document as such ("the report", "his essay")."""
    return bool(_DOC_NOUN.search(question))


# What a question says about where to look, not what to find: "does the article name",
# "mentioned in the report", a leading "In his essay on X," or a closing ", according to Y".
_ASKS_SOURCE = re.compile(
    rf"\b(does|do|did)\s+(the|this|that|his|her|their)\s+(\w+\s+)?(?:{DOCUMENT_NOUNS})\s+"
    r"(name|mention|list|say|give|describe|cite|use|discuss)\b"
    rf"|\b(are|is|were|was)\s+(mentioned|named|listed|cited|described|discussed)(\s+(in|by)\s+(the|this)\s+(?:{DOCUMENT_NOUNS}))?\b"
    rf"|\b(in|from|according\s+to)\s+(the|this|that|his|her|their)\s+(\w+\s+)?(?:{DOCUMENT_NOUNS})\b"
    r"(\s+(on|about|called|titled)\s+[^,?]*)?",
    re.I,
)
_TRAILING_FRAME = re.compile(r",\s*(according\s+to|in|from)\b[^,?]{3,120}(?=\?*$)", re.I)


def focus(question: str) -> str:
    """The question without the words that only say where to look: what the answer must match.
    "Which operations does the article name?" -> "Which operations ?"."""
    text = _TRAILING_FRAME.sub("", core(question))
    return " ".join(_ASKS_SOURCE.sub(" ", text).split())


_COMPARE_SPLITS = [
    re.compile(p, re.I)
    for p in (
        r"\b(?:compare|contrast|comparing|contrasting)\s+(.+?)\s+(?:with|to|against)\s+(.+)",
        r"\b(?:compare|contrast|comparing|contrasting)\s+(.+?)\s+and\s+(.+)",
        r"\bdifferences?\s+between\s+(.+?)\s+and\s+(.+)",
        r"(.+?)\s+(?:versus|vs\.?|compared?\s+(?:with|to)|differs?\s+from)\s+(.+)",
    )
]
_WH_PLAIN = _WH.replace("(", "(?:", 1)
_PART_SPLIT = re.compile(rf"(?:,\s*|\s)and\s+(?=(?:in\s+|from\s+|for\s+|at\s+|by\s+)?{_WH_PLAIN}\b)", re.I)


def parts(question: str, kind: str) -> list[str]:
    """The parts an answer must cover: the two sides of a comparison, the two questions of a
    two-part question. Empty when the question is one piece."""
    text = focus(question).rstrip(" ?.")
    if kind == "compare":
        for pattern in _COMPARE_SPLITS:
            m = pattern.search(text)
            if m:
                return [m.group(1).strip(), m.group(2).strip()]
    if kind == "multihop":
        pieces = [p.strip() for p in _PART_SPLIT.split(text) if p.strip()]
        if len(pieces) < 2:
            return []
        # "Which agencies and which provinces are behind the stations": the first part
        # shares the second's predicate.
        tail = pieces[-1].split()[2:]
        return [p if len(p.split()) > 3 else " ".join([p, *tail]) for p in pieces]
    return []


_HEAD = re.compile(
    r"^(?:list|name|enumerate|give\s+(?:me\s+)?(?:a\s+list\s+of\s+)?)\s+(?:all\s+|the\s+|some\s+)?"
    r"(?P<ma>(?:\w+\s+){0,2}?)(?P<a>\w+(?<!ou)(?<!i)s)\b"
    r"|^(?:which|what)\s+(?P<mb>(?:\w+[\s-]+){0,3}?)(?P<b>\w+(?<!s)(?<!ou)(?<!i)s)\b"
    r"|^what\s+(?:are|were)\s+(?:the|some|all)\s+(?P<mc>(?:\w+\s+){0,2}?)(?P<c>\w+(?<!s)(?<!ou)(?<!i)s)\b",
    re.I,
)


def head_noun(question: str) -> str | None:
    """What a list question enumerates: "List the methods China uses" -> "methods" (a plural:
    "famous" or "this" is not one)."""
    m = _HEAD.search(focus(question))
    return (m.group("a") or m.group("b") or m.group("c")) if m else None


def head_phrase(question: str) -> str:
    """The head noun with the words before it: "Which anti-bullying programs ..." ->
    "anti-bullying programs"."""
    m = _HEAD.search(focus(question))
    if m is None:
        return ""
    for modifiers, head in (("ma", "a"), ("mb", "b"), ("mc", "c")):
        if m.group(head):
            return f"{m.group(modifiers) or ''}{m.group(head)}".strip()
    return ""
