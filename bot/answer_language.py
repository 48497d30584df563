"""The asker's language in an answer: the abstention sentence and the one line that says the
quotes are in another language ("Quoted from the English source:"), per language.

Languages are the codes of `index.languages.detect_language`. A language not in these tables
("other": French, Russian...) gets the English lines for its abstention and no source line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bot.prompts import CANNOT_ANSWER
from bot.types import Citation, Passage, TokenCallback

_CANNOT_ANSWER = {
    "en": CANNOT_ANSWER,
    "zh": "文件中没有提到。",
    "ja": "文書には記載がありません。",
    "ko": "문서에 나와 있지 않습니다.",
}

# "Quoted from the {name} source:" in the asker's language, and the names of the languages
# a source may be in, in that language.
_QUOTED_FROM = {
    "en": "Quoted from the {name} source:",
    "zh": "以下引自{name}原文：",
    "ja": "以下は{name}の原文からの引用です：",
    "ko": "다음은 {name} 원문에서 인용한 것입니다:",
}
_NAMES = {
    "en": {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean"},
    "zh": {"en": "英文", "zh": "中文", "ja": "日文", "ko": "韩文"},
    "ja": {"en": "英語", "zh": "中国語", "ja": "日本語", "ko": "韓国語"},
    "ko": {"en": "영어", "zh": "중국어", "ja": "일본어", "ko": "한국어"},
}


def cannot_answer(language: str) -> str:
    """The abstention sentence in `language` (English when there is none for it)."""
    return _CANNOT_ANSWER.get(language, CANNOT_ANSWER)


def in_language(on_token: TokenCallback | None, language: str) -> TokenCallback | None:
    """`on_token` with the English abstention sentence, streamed whole by the answerers,
    replaced by the one in `language`."""
    if on_token is None or cannot_answer(language) == CANNOT_ANSWER:
        return on_token
    sink, local = on_token, cannot_answer(language)
    return lambda piece: sink(local if piece == CANNOT_ANSWER else piece)


def is_cannot_answer(text: str) -> bool:
    """Whether `text` is the abstention sentence in some language."""
    return text.strip() in _CANNOT_ANSWER.values()


def source_note(language: str, citations: Sequence[Citation], passages: Sequence[Passage]) -> str:
    """The line that says the cited passages are in another language than the asker's, in the
    asker's language; "" when they are in the asker's language, or either language is unknown.
    Several other languages: the one most of the cited passages are in."""
    if language not in _QUOTED_FROM:
        return ""
    by_id = {p.id: p for p in passages}
    cited = [by_id[c.passage_id] for c in citations if c.passage_id in by_id]
    if not cited and citations:  # citations without passage ids: their sources' passages
        sources = {c.source for c in citations}
        cited = [p for p in passages if p.source in sources]
    others = Counter(p.language for p in cited if p.language and p.language != language)
    names = _NAMES[language]
    for other, _ in others.most_common():
        if other in names:
            return _QUOTED_FROM[language].format(name=names[other])
    return ""
