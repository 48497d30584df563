"""The keyword side of the index: its vocabulary (tokenizer, stopwords, stemmer), BM25 over the
committed chunks and over whole documents, and the copies saved on disk per manifest
generation so a new reader starts without re-tokenising the collection.

The cache is derived data: each folder `bm25-t<tokenizer version>-<generation>` under the layout's keyword
cache holds the chunk index and, beside it, the document index; a reader that finds none (or an
unreadable one) builds them from the manifest and saves them for the next.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from index.chunks import embed_text
from index.languages import chinese_segmentation, cjk_terms, has_cjk, has_han, strip_cjk
from index.manifest import Manifest

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me
    more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves s t don
    """.split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


# The tokenizer's version, part of the keyword cache's folder name: a change to `terms` (2: CJK
# words) makes readers rebuild the saved indexes instead of reusing ones built with old tokens.
TOKENIZER_VERSION = 2


def terms(text: str, language: str | None = None) -> list[str]:
    """The keyword index's vocabulary: lowercased, stop-worded, stemmed word tokens, and for text
    with CJK characters the words of its CJK runs (`index.languages.cjk_terms`, not stemmed)
    after those of the rest. `language` is the text's language when known (a chunk's)."""
    if has_cjk(text):
        return _word_terms(strip_cjk(text)) + cjk_terms(text, language)
    return _word_terms(text)


def _word_terms(text: str) -> list[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(words) if words else []


class KeywordIndex:
    """BM25 over the committed chunks (bm25s, sparse matrices: fast at 100k chunks)."""

    def __init__(self, ids: Sequence[str], texts: Iterable[str]) -> None:
        self.ids = list(ids)
        self._bm25: Any = None
        self._df: Counter[str] = Counter()
        if self.ids:
            self._build(zip(self.ids, texts, strict=True), keep_ids=False)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> KeywordIndex:
        """Built from a stream of (id, text), e.g. a database cursor: the collection's texts are
        never all in memory at once."""
        index = cls([], [])
        index._build(rows, keep_ids=True)
        return index

    def _build(self, rows: Iterable[tuple[str, str]], *, keep_ids: bool) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
        # Terms become small integers as they are read, packed 4 bytes each: a list of str per
        # chunk would hold millions of string objects at 100k chunks (~250 MB of RSS that stays
        # after the build), a list of int 8 bytes a token.
        vocab: dict[str, int] = {}
        corpus: list[array[int]] = []
        df: Counter[int] = Counter()
        # Indexed text is always segmented with jieba, even when a question over an index
        # without Chinese (index.languages) finds a re-ingest to read in the middle of it.
        with chinese_segmentation(True):
            for chunk_id, text in rows:
                if keep_ids:
                    self.ids.append(chunk_id)
                tokens = array("I", [vocab.setdefault(t, len(vocab)) for t in terms(text) or ["\u2205"]])
                corpus.append(tokens)
                df.update(set(tokens))
        if not corpus:
            return
        words = list(vocab)
        self._df = Counter({words[i]: n for i, n in df.items()})
        self._bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self._bm25.index((corpus, vocab), show_progress=False)
        self._vocab = self._bm25.vocab_dict

    def save(self, folder: Path) -> None:
        """Write the index to `folder` atomically (readers may race to write it)."""
        if self._bm25 is None:
            return
        tmp = folder.with_name(f"{folder.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        self._write(tmp)
        try:
            os.replace(tmp, folder)
        except OSError:  # another reader saved it first
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        (folder / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")
        (folder / "df.json").write_text(json.dumps(self._df), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        index = cls([], [])
        index._bm25 = bm25s.BM25.load(str(folder), load_vocab=True, show_progress=False)
        index.ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        index._df = Counter(json.loads((folder / "df.json").read_text(encoding="utf-8")))
        index._vocab = index._bm25.vocab_dict
        return index

    @cached_property
    def has_han_terms(self) -> bool:
        """Whether a term of the vocabulary has a Han character (Chinese, or kanji): only then
        can a question's Chinese words match (index.languages). One scan of the vocabulary, on
        first use."""
        return self._bm25 is not None and has_han("".join(self._vocab))

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms weigh the most."""
        n = len(self.ids)
        df = self._df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, n: int, within: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Best `n` ids for the query; `within` restricts the search to these row numbers."""
        if self._bm25 is None:
            return []
        tokens = [t for t in terms(query) if t in self._vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        if within is not None:
            masked = np.zeros_like(scores)
            masked[within] = scores[within]
            scores = masked
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


def keyword_indexes(
    manifest: Manifest, cache_dir: Path | None, generation: int, count: int, *, documents: bool
) -> tuple[KeywordIndex, KeywordIndex]:
    """The BM25 indexes (chunks, and whole documents when `documents`) of this generation of
    the manifest, which holds `count` chunks: loaded from `cache_dir` when saved there, else
    built and saved (older generations' copies are removed). No `cache_dir`: built in memory."""
    folder = cache_dir / f"bm25-t{TOKENIZER_VERSION}-{generation}" if cache_dir else None
    index = _load_cached(folder, count)
    if index is None:
        index = KeywordIndex.from_rows(
            (i, embed_text(title, section, text)) for i, title, section, text in manifest.chunk_texts()
        )
        if folder is not None:
            _save_cached(index, folder)
            for old in folder.parent.glob("bm25-*"):
                if old.name != folder.name and not old.name.endswith(".tmp"):
                    shutil.rmtree(old, ignore_errors=True)
    by_document = KeywordIndex([], [])
    if documents:
        where = folder / "documents" if folder is not None else None
        loaded = _load_cached(where, None)
        if loaded is not None:
            by_document = loaded
        else:
            # One entry per document: its file name ("2023 Q3 AAPL.pdf" says what it is),
            # title and whole text. Committed files only, like the chunks.
            by_document = KeywordIndex.from_rows(
                (source, f"{_file_words(source)} {title}\n{text}")
                for source, title, text in manifest.file_texts()
            )
            if where is not None and folder is not None and folder.exists():
                _save_cached(by_document, where)
    _return_freed_memory()
    return index, by_document


def _file_words(source: str) -> str:
    """'2023 Q3 AAPL.pdf' -> '2023 Q3 AAPL': file names often say what a document is."""
    return re.sub(r"[_\-.]+", " ", Path(source).stem)


def _return_freed_memory() -> None:
    """Hand the memory an index build freed back to the system. glibc keeps freed heap pages
    (here ~100 MB at 100k chunks: the token lists of the build) unless asked to trim them."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _load_cached(folder: Path | None, count: int | None) -> KeywordIndex | None:
    """A saved index (with `count` entries, when given), or None."""
    if folder is None or not folder.exists():
        return None
    try:
        index = KeywordIndex.load(folder)
    except Exception:
        log.warning("keyword index cache in %s is unreadable; rebuilding", folder, exc_info=True)
        return None
    return index if count is None or len(index.ids) == count else None


def _save_cached(index: KeywordIndex, folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        index.save(folder)
    except PermissionError as err:
        # A read-only DOSSIER_HOME: the index is rebuilt in memory by each reader instead.
        log.info("not saving the keyword index to %s: %s", folder, err)
    except OSError:
        log.warning("could not save the keyword index to %s", folder, exc_info=True)
