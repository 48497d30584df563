"""Whether a chat message reads as a question to the documents, not as chit-chat.

A general rule, no word lists of topics: a message asks when a sentence of it ends with a
question mark or opens with an interrogative ("what", "how do I", "is there", "can
someone"), or it states a need ("I'm looking for ...", "does anyone know ..."). Greetings,
thanks and small talk ("how are you?", "anyone here?") do not count, nor messages too short
to say what they ask about. Used by auto-answers in help channels (bot.discord_auto), where
a wrong "yes" costs an unwanted message and a wrong "no" only silence.
"""

from __future__ import annotations

import re

from bot.discord_text import strip_mentions

MIN_WORDS = 3  # "Why?" or "what now?" says too little to search the documents with

# Without a question mark, an opening that can only ask: a wh-word (not an exclamation: "what a
# day", "how cool is that") or a yes/no opening addressed to the reader ("is there", "can I").
_INTERROGATIVE = re.compile(
    r"^(who|whom|whose|what|what's|whats|when|where|which|why|how)\b(?! (a|an|cool|nice|great|awesome|"
    r"funny|weird|sad|lovely|fun|bad|good)\b)"
    r"|^(is|are|was|were) (there|it true)\b"
    r"|^(can|could|should|may|do|did|must) (i|we|you|one|someone|anyone|the|a|an|they)\b"
    r"|^(does|is|are|was|were|has|have) (the|a|an|this|that|it|he|she|they|any|anyone)\b",
    re.I,
)
# Needs stated without a question mark: "anyone know how ...", "I'm looking for the policy on ...".
_NEED = re.compile(
    r"\b(does|do|can|could) (anyone|anybody|someone|somebody|you)\b|"
    r"\b(any|anyone|anybody) (idea|ideas|clue|know|knows)\b|"
    r"\b(i|we) (need|want|am trying|'m trying|are trying|'re trying) to (know|find|understand|figure)\b|"
    r"\b(i'm|i am|we're|we are) (looking for|wondering|trying to find)\b|"
    r"\b(i|we) (wonder|was wondering|were wondering)\b|"
    r"\b(help me|tell me|explain|show me where)\b|"
    r"\bhow (do|can|should|would) (i|we|you|one)\b",
    re.I,
)
# Small talk that is shaped like a question: asked of the people present, not of the documents.
_SMALL_TALK = re.compile(
    r"^(hi|hey|hello|yo|sup|hiya|howdy|good (morning|afternoon|evening|night)|gm|gn|"
    r"thanks|thank you|thx|ty|cheers|lol|lmao|haha|ok|okay|k|cool|nice|great|same|\+1|"
    r"how are (you|ya|u|y'all|you all|everyone|things)|how's it going|hows it going|"
    r"how is everyone|what's up|whats up|wassup|sup|what's new|"
    r"(is )?(anyone|anybody|someone) (here|there|around|online|awake|alive)|"
    r"are you (there|here|alive|ok|okay)|you there|right|really|seriously|why not|what now|who cares|"
    r"what do you think|how about you|and you|you\?)\b",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
_URL = re.compile(r"https?://\S+")
_WORD = re.compile(r"[^\W\d_][\w'-]*", re.U)
_CJK_QUESTION = re.compile(r"[？吗呢]\s*$|^(谁|什么|哪|怎么|怎样|为什么|如何|是否|有没有|多少)")


def reads_as_question(text: str) -> bool:
    """True when the message asks something the documents might answer."""
    text = _URL.sub(" ", _CODE.sub(" ", strip_mentions(text))).strip()
    if not text:
        return False
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    asking = [s for s in sentences if _asks(s)]
    return any(not _SMALL_TALK.match(s) and _says_enough(s) for s in asking)


def _asks(sentence: str) -> bool:
    if sentence.rstrip().endswith(("?", "？")) or _CJK_QUESTION.search(sentence):
        return True
    return bool(_INTERROGATIVE.match(sentence) and len(_WORD.findall(sentence)) >= MIN_WORDS + 1) or bool(
        _NEED.search(sentence)
    )


def _says_enough(sentence: str) -> bool:
    words = _WORD.findall(sentence)
    if any("\u4e00" <= ch <= "\u9fff" for ch in sentence):  # Chinese: no spaces between words
        return sum("\u4e00" <= ch <= "\u9fff" for ch in sentence) >= 4
    return len(words) >= MIN_WORDS
