"""Language-aware text for CJK: which language a text is in, keyword terms, sentence boundaries.

Pure functions, no model. The detector looks at scripts only: the share of Han, Kana and Hangul
among a text's letters. It does not handle:
- Latin-script languages other than English: a Latin-script text is "en" when it is short or
  has English function words, else "other" (French, German, Spanish... are all "other");
- Cyrillic, Arabic, Devanagari and every other script: "other";
- Traditional against Simplified Chinese: both are "zh";
- Japanese written in kanji alone, without any kana (a short heading): "zh";
- mixed text: the majority decides (a Chinese sentence quoting an English name is "zh" while its
  Han characters are at least 30% of its letters; an English sentence quoting a Chinese
  name is "en").

Keyword terms: Chinese is segmented into words with `jieba` (its dictionary ships in its wheel;
loaded once, 0.5-1 s on first use, silently); Japanese and Korean, and Chinese when jieba is
not installed, fall back to overlapping character bigrams, as CJK search engines do.
`cjk_terms` returns the terms of the CJK runs of a text only; `strip_cjk` gives the rest, for
the existing word tokenizer.

Questions over an index without Chinese. A question's terms are only ever compared with the
terms of indexed text (the keyword index's vocabulary, retrieved sentences, document names).
When no indexed term has a Han character, no Chinese word of the question can match anything,
however it is segmented: every one weighs as a term seen nowhere (the highest IDF, the same
for all) and counts in the question's total weight the way an unknown English word does, so
a question about what the documents lack still scores low. Only their number matters (it
sets the share of a mixed question's weight that its English words and numbers hold, as in
"加拿大哪个城市没有110警察站"). The engine then answers inside `chinese_segmentation(False)`,
where a Chinese run loses its function words (ZH_STOPWORDS, which jieba's words lose too) and
the rest is cut into consecutive two-character pieces, and jieba's dictionary is never loaded:
a cold `dossier ask` in Chinese over English documents costs what one in English does. Two
characters a piece because that is about the length of a Chinese word: on the 21 questions of
report-zh-dev, 5.8 distinct pieces a question against jieba's 6.2 terms, the same number for
15 of them (overlapping bigrams: 13.6, which reordered the passages of the "110" question;
pieces without dropping function words: 7.6, which still did). The dev sets' answers and
rankings are unchanged (bench/RESULTS.md, "A cold `dossier ask` in Chinese without jieba").

Over an index with Chinese terms, jieba stays. Segmenting the question instead by longest
match against the index's own vocabulary (no dictionary) was considered and left out: the
extractive answerer turns each retrieved Chinese sentence into terms as well, with jieba so
that they are the index's terms, so the dictionary would still be loaded for the first
Chinese passage and the question would gain nothing; it would also make the question's terms
depend on the vocabulary of the moment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

# Unicode blocks. Han: CJK Unified Ideographs, Extension A, Compatibility Ideographs, and the
# supplementary planes (Extensions B and later).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U00030000-\U0003134f"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"

_HAN_RE = re.compile(f"[{_HAN}]")
_KANA_RE = re.compile(f"[{_KANA}]")
_HANGUL_RE = re.compile(f"[{_HANGUL}]")
# A run of CJK characters (the prolonged sound mark ー is in the Katakana block).
CJK_RUN = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]+")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")

# Share of letters that makes a text CJK (see the module docstring for mixed text).
CJK_SHARE = 0.3
# Among CJK letters, a share of kana this high is Japanese (Japanese prose is mostly kana).
KANA_SHARE = 0.1

_ENGLISH_FUNCTION_WORDS = frozenset(
    "the of and to in is are was were a an that this it for on with as by at from be has have "
    "not or which what who how why when where does do did".split()
)

# Chinese function words and question words: they carry no topic. Single characters and words,
# as jieba gives them. Content words that are short (站, 国) are not here.
ZH_STOPWORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 也 都 就 而 并 把 被 对 从 向 给 让 于 以 之 其 这 那 这些 那些 这个 那个
    个 有 没有 为 着 过 吗 呢 吧 啊 呀 么 什么 哪 哪里 哪些 哪个 多少 怎么 怎样 如何 为什么 谁 几 是否
    我 你 他 她 它 我们 你们 他们 她们 它们 自己 一个 一些 但 但是 因为 所以 如果 虽然 还 又 很 更 最
    已经 可以 会 要 能 将 等 等等 具体 到底 请问
    """.split()
)

# The longest first, so that 什么 is one function word rather than 什 and 么.
_ZH_STOPWORD = re.compile("|".join(map(re.escape, sorted(ZH_STOPWORDS, key=len, reverse=True))))

log = logging.getLogger(__name__)


@lru_cache(maxsize=8192)  # readers detect old chunks' language at every question: once each
def detect_language(text: str) -> str:
    """ "zh", "ja", "ko", "en" or "other", from the scripts of the text's letters (see the module
    docstring for what it cannot tell apart). Text without letters is "other"."""
    letters = sum(1 for ch in text if ch.isalpha())
    if letters == 0:
        return "other"
    han = len(_HAN_RE.findall(text))
    kana = len(_KANA_RE.findall(text))
    hangul = len(_HANGUL_RE.findall(text))
    cjk = han + kana + hangul
    if cjk >= CJK_SHARE * letters:
        if kana >= KANA_SHARE * cjk:
            return "ja"
        if hangul >= han:
            return "ko"
        return "zh"
    latin = _LATIN_WORD.findall(text)
    if sum(len(w) for w in latin) < 0.5 * letters:
        return "other"
    if len(latin) < 8:
        return "en"  # too short to tell; the bot's home language
    english = sum(1 for w in latin if w.lower() in _ENGLISH_FUNCTION_WORDS)
    return "en" if english >= 0.1 * len(latin) else "other"


def has_han(text: str) -> bool:
    """Whether the text holds any Han character (Chinese, or kanji in Japanese)."""
    return _HAN_RE.search(text) is not None


def has_cjk(text: str) -> bool:
    """Whether the text holds any Han, Kana or Hangul character."""
    return CJK_RUN.search(text) is not None


def strip_cjk(text: str) -> str:
    """The text with its CJK runs replaced by a space: what the word tokenizer should see."""
    return CJK_RUN.sub(" ", text)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    """jieba's default tokenizer, its dictionary loaded, or None when jieba is not installed.
    jieba logs the dictionary load (and any failure to write its cache) to stderr through its
    own logger: that logger is silenced, a failure to load still raises."""
    try:
        import jieba
    except ImportError:
        log.info("jieba is not installed: Chinese keyword terms fall back to character bigrams")
        return None
    jieba.setLogLevel(logging.CRITICAL)
    jieba.initialize()
    return jieba.dt


# Whether Chinese runs are segmented with jieba here (see the module docstring). A context
# variable: each thread, and each task, answering a question has its own.
_segmenting: ContextVar[bool] = ContextVar("segment_chinese", default=True)


@contextmanager
def chinese_segmentation(enabled: bool) -> Iterator[None]:
    """Within the block, Chinese runs become words with jieba (`enabled`, the default outside
    any block) or two-character `pieces` without loading it (for a question over an index
    without Han terms, where no word could match)."""
    token = _segmenting.set(enabled)
    try:
        yield
    finally:
        _segmenting.reset(token)


def segmenting_chinese() -> bool:
    """Whether Chinese runs are segmented with jieba here (see `chinese_segmentation`)."""
    return _segmenting.get()


def segmenter_available() -> bool:
    """Whether Chinese is segmented into words (jieba), loading its dictionary now if so."""
    return _jieba() is not None


def bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a run of CJK characters; a lone character stays whole."""
    if len(run) < 2:
        return [run] if run else []
    return [run[i : i + 2] for i in range(len(run) - 1)]


def pieces(run: str) -> list[str]:
    """A Chinese run without its function words (ZH_STOPWORDS, as jieba's words are filtered),
    the rest cut into consecutive two-character pieces (the last may be one): stand-ins, about
    one per word, for words that can match nothing (see the module docstring)."""
    return [part[i : i + 2] for part in _ZH_STOPWORD.split(run) for i in range(0, len(part), 2)]


def cjk_terms(text: str, language: str | None = None) -> list[str]:
    """Keyword terms of the CJK runs of text, in order: Chinese words (jieba, search mode: a long
    word also gives its dictionary sub-words) without function words; character bigrams for
    Japanese and Korean, and for Chinese without jieba; inside `chinese_segmentation(False)`,
    Chinese runs give two-character `pieces` instead of words. Non-CJK text is ignored (see
    `strip_cjk`). `language` is the text's language if known (e.g. the chunk's), else detected."""
    runs = CJK_RUN.findall(text)
    if not runs:
        return []
    language = language or detect_language(text)
    chinese = language not in ("ja", "ko")
    segmenting = _segmenting.get()
    segmenter = _jieba() if chinese and segmenting else None
    out: list[str] = []
    for run in runs:
        if not (chinese and _HAN_RE.search(run) and not _KANA_RE.search(run)):
            out.extend(bigrams(run))
        elif not segmenting:
            out.extend(pieces(run))
        elif segmenter is not None:
            out.extend(w for w in segmenter.cut_for_search(run) if w.strip() and w not in ZH_STOPWORDS)
        else:
            out.extend(bigrams(run))
    return out


# A CJK sentence ends at 。！？；(full width), ｡ (half width), or ! ? ; right after a CJK
# character, with any repeats ("？！", "……。") and closing quotes or brackets kept with it.
# A blank line also ends one. ASCII ! ? ; after Latin text are left to the English splitter.
_CJK_END = re.compile(
    f"(?:[。！？；｡]|(?<=[{_HAN}{_KANA}{_HANGUL}])[!?;])[。！？；｡!?;…]*"
    "[」』”’）》】〉〕\"')\\]]*"
    r"|\n[ \t\u3000]*\n"
)


_CLOSERS = frozenset("」』”’）》】〉〕\"')]")
_QUOTATIVE = frozenset("とっ")


def cjk_sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans (start, end) of the sentences of text[start:end] split at CJK sentence ends,
    trimmed of surrounding space (including the ideographic space U+3000)."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _CJK_END.finditer(text, start, end):
        if match.group()[-1] in _CLOSERS and text[match.end() : match.end() + 1] in _QUOTATIVE:
            continue  # 「本当か？」と彼は聞いた。: the quote is part of the sentence
        cut = match.start() if match.group().startswith("\n") else match.end()
        append_span(text, spans, cursor, cut)
        cursor = match.end()
    append_span(text, spans, cursor, end)
    return spans


def split_cjk_sentences(text: str) -> list[str]:
    """The sentences of a CJK text, each with its closing punctuation and quotes."""
    return [text[a:b] for a, b in cjk_sentence_spans(text)]


def append_span(text: str, spans: list[tuple[int, int]], a: int, b: int) -> None:
    """Add text[a:b] to `spans` without its surrounding white space (nothing if that is all)."""
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        spans.append((a, b))
