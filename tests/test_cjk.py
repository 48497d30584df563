"""Chinese documents and questions through the product: keyword terms, whole-sentence quotes,
each chunk's language in the manifest (and its migration), answers that say when they quote
another language and abstain in the asker's (issue 16; index.languages wired in)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.answer_language import cannot_answer, is_cannot_answer, source_note
from bot.engine import Engine
from bot.render import format_answer
from bot.types import Answer, Citation, Passage
from dossier_common.settings import Settings
from index import languages
from index.keywords import terms
from index.layout import Layout
from index.manifest import Manifest
from index.schema import SCHEMA_VERSION
from index.sentences import clause_spans, sentence_spans, split_sentences
from ingest.pipeline import ingest_paths
from tests.fakes import HashEmbedder

needs_jieba = pytest.mark.skipif(not languages.segmenter_available(), reason="jieba is not installed")

LANTERNS = """# 青港灯笼船节

青港是一个位于海边的小镇，以每年秋天举办的灯笼船节而闻名。灯笼船节始于一八九二年，最初是渔民为了纪念在风暴中遇难的同伴而举行的。

每年节日期间，镇上的居民会制作大约三百只纸灯笼，并把它们放在木船上。木船在日落之后从老码头出发，沿着海湾缓缓航行！

节日由青港文化协会（Qinggang Cultural Association）负责组织。协会的会长是林秀英（Lin Xiuying），她在二零一五年接任这一职务。协会每年的预算约为十二万元，主要用于购买纸张和修理木船。

近年来，越来越多的游客来到青港观看灯笼船。为了保护海湾的环境，协会规定所有灯笼必须使用可降解的材料制作。
"""


def _ingest(tmp_path: Path, embedder) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lanterns.md").write_text(LANTERNS, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", _env_file=None)
    report = ingest_paths([docs], settings, embedder)
    assert report.added == 1
    return settings


@pytest.fixture
def lantern_home(tmp_path: Path) -> Settings:
    """The Chinese document ingested with the fake embedder: for the plumbing."""
    return _ingest(tmp_path, HashEmbedder())


@pytest.fixture(scope="module")
def lantern_engine(tmp_path_factory: pytest.TempPathFactory, embedder):
    """The Chinese document ingested with the real model: for answers (the fake embedder's 64
    hashed dimensions give Chinese sentences, one "word" per clause, random similarities)."""
    engine = Engine(_ingest(tmp_path_factory.mktemp("lanterns"), embedder), embedder=embedder)
    yield engine
    engine.close()


# -- keyword terms and sentences -------------------------------------------------------------


@needs_jieba
def test_terms_of_chinese_text_are_words_and_english_terms_are_unchanged():
    words = terms("保护卫士的报告发现了多少个海外警察站")
    assert {"报告", "海外", "警察"} <= set(words)
    assert "保护卫士的报告发现了多少个海外警察站" not in words
    assert "的" not in words  # a function word
    # The Latin part keeps the word tokenizer (stemmed), the CJK part follows it.
    assert terms("Safeguard Defenders 报告 stations") == ["safeguard", "defend", "station", "报告"]
    assert terms("The Safeguard Defenders report found 54 stations.") == [
        "safeguard",
        "defend",
        "report",
        "found",
        "54",
        "station",
    ]


def test_chinese_sentences_split_at_full_width_ends():
    text = "灯笼船节始于一八九二年。木船从老码头出发！为什么？ It ends here. And more."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "灯笼船节始于一八九二年。",
        "木船从老码头出发！",
        "为什么？",
        "It ends here.",
        "And more.",
    ]
    english = "It ends here. And more. Mr. Smith stays."
    assert [english[a:b] for a, b in split_sentences(english)] == [
        "It ends here.",
        "And more.",
        "Mr. Smith stays.",
    ]


def test_long_chinese_sentence_has_clauses_at_full_width_commas():
    sentence = (
        "这份报告由总部设在西班牙马德里的人权组织于二零二二年九月发布，"
        "报告指出公安机关在五大洲的二十一个国家设立了五十四个所谓的海外服务站，"
        "这些服务站声称为海外华人提供驾照更新等行政服务。"
    )
    clauses = [sentence[a:b] for a, b in clause_spans(sentence)]
    assert len(clauses) == 3 and clauses[-1].endswith("行政服务。")
    assert clause_spans("灯笼船节始于一八九二年，最初是为了纪念。") == []  # short: no clauses
    kinds = [k for _, _, k in sentence_spans(sentence)]
    assert kinds == [0, 1, 1, 1]


def test_over_long_chinese_sentence_is_cut_at_clause_marks():
    from ingest.chunking import _word_windows

    text = "，".join(["青港的居民每年制作三百只纸灯笼"] * 12) + "。"

    def count(texts):
        return [len(t) for t in texts]

    windows = _word_windows(text, 0, len(text), count, 60)
    assert len(windows) > 1
    assert all(text[b - 1] in "，。" for _, b in windows)  # whole clauses, not cut mid-word
    assert windows[0][0] == 0 and windows[-1][1] == len(text)


def test_keyword_cache_is_versioned(lantern_home):
    engine = Engine(lantern_home, embedder=HashEmbedder())
    try:
        engine.ask("灯笼船节始于哪一年？")
    finally:
        engine.close()
    saved = [p.name for p in Layout(lantern_home.home).keyword_cache.glob("bm25-*")]
    assert saved and all(name.startswith("bm25-t2-") for name in saved)


# -- language per chunk ----------------------------------------------------------------------


def test_chunk_language_is_recorded_at_ingest(lantern_home):
    manifest = Manifest(Layout(lantern_home.home).manifest, readonly=True)
    try:
        rows = manifest.chunks()
        assert rows and {r["language"] for r in rows} == {"zh"}
    finally:
        manifest.close()


def _as_schema_2(path: Path) -> None:
    """Make the manifest what schema 2 wrote: no language column, version key 2."""
    db = sqlite3.connect(path)
    with db:
        db.execute("ALTER TABLE chunks DROP COLUMN language")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def test_schema_2_index_is_read_then_migrated_without_re_embedding(lantern_home, tmp_path):
    path = Layout(lantern_home.home).manifest
    _as_schema_2(path)
    # A reader (no migration) still reads it: the language is detected from the text.
    engine = Engine(lantern_home, embedder=HashEmbedder())
    try:
        answer = engine.ask("灯笼船节始于哪一年？")
        assert answer.retrieved and all(p.language == "zh" for p in answer.retrieved)
    finally:
        engine.close()
    # A writer migrates it: the column is back, old rows NULL.
    manifest = Manifest(path)
    try:
        assert manifest.schema_version() == SCHEMA_VERSION >= 3
        assert {r["language"] for r in manifest.chunks()} == {None}
    finally:
        manifest.close()
    embedder = HashEmbedder()
    report = ingest_paths([tmp_path / "docs"], lantern_home, embedder)
    assert (report.unchanged, embedder.embedded) == (1, 0)


# -- answers ---------------------------------------------------------------------------------


@needs_jieba
def test_chinese_question_is_answered_by_keywords_with_a_whole_sentence(lantern_engine):
    answer = lantern_engine.ask("灯笼船节始于哪一年？")
    assert not answer.abstained, answer.text
    assert answer.language == "zh" and answer.source_note == ""
    assert "一八九二年" in answer.text
    quote = next(c.quote for c in answer.citations if "一八九二年" in c.quote)
    assert quote.endswith("。") and quote.startswith("灯笼船节始于")
    assert all(p.language == "zh" for p in answer.retrieved)


def test_english_question_over_chinese_document_says_so(lantern_engine):
    # Found by the English name the Chinese text gives (cross-lingual retrieval is the
    # multilingual model's part, not tested here).
    answer = lantern_engine.ask("What does the Qinggang Cultural Association do?")
    assert not answer.abstained, answer.text
    assert answer.language == "en"
    assert answer.source_note == "Quoted from the Chinese source:"
    assert "负责组织。" in answer.text
    assert format_answer(answer).splitlines()[0] == "Quoted from the Chinese source:"
    assert answer.to_dict()["source_note"] == "Quoted from the Chinese source:"


def test_chinese_question_without_an_answer_abstains_in_chinese(lantern_engine):
    streamed: list[str] = []
    answer = lantern_engine.ask("火星上有多少颗卫星？", on_token=streamed.append)
    assert answer.abstained and streamed == ["文件中没有提到。"]
    assert answer.text == "文件中没有提到。" == cannot_answer("zh")
    assert answer.source_note == ""
    assert is_cannot_answer(answer.text)


def test_english_abstention_is_unchanged(lantern_engine):
    answer = lantern_engine.ask("How many moons does Mars have?")
    assert answer.abstained and answer.text == "The documents don't say."
    assert "language" not in answer.to_dict() and "source_note" not in answer.to_dict()


def test_source_note_lines():
    zh = Passage(id="a", source="s", text="灯笼。", location="", score=1.0, language="zh")
    en = Passage(id="b", source="t", text="Lanterns.", location="", score=1.0, language="en")
    cite_zh = Citation(n=1, source="s", location="", quote="灯笼。", passage_id="a")
    cite_en = Citation(n=1, source="t", location="", quote="Lanterns.", passage_id="b")
    assert source_note("zh", [cite_en], [zh, en]) == "以下引自英文原文："
    assert source_note("en", [cite_zh], [zh, en]) == "Quoted from the Chinese source:"
    assert source_note("zh", [cite_zh], [zh, en]) == ""
    assert source_note("en", [cite_en], [zh, en]) == ""
    assert source_note("other", [cite_zh], [zh, en]) == ""
    assert source_note("ja", [cite_en], [zh, en]) == "以下は英語の原文からの引用です："


def test_renderers_show_the_source_note():
    from bot.chat_views import _printable_answer
    from bot.discord_render import render_answer

    answer = Answer(
        question="加拿大有多少个海外警察站？",
        text="There are three stations in Toronto [1].",
        citations=(
            Citation(n=1, source="r.md", location="p. 1", quote="There are three stations in Toronto."),
        ),
        abstained=False,
        retrieved=(),
        language="zh",
        source_note="以下引自英文原文：",
    )
    assert format_answer(answer).startswith("以下引自英文原文：\nThere are three")
    assert _printable_answer(answer).source_note == "以下引自英文原文："
    assert render_answer(answer, compact=True)[0].content.startswith("-# 以下引自英文原文：")


def test_warm_loads_the_segmenter(lantern_home, monkeypatch):
    import bot.engine

    calls = []
    monkeypatch.setattr(bot.engine, "segmenter_available", lambda: calls.append(1) or True)
    engine = Engine(lantern_home, embedder=HashEmbedder())
    try:
        engine.warm()
    finally:
        engine.close()
    assert calls == [1]


# The child of the test below: an English index, then the Chinese document added to it.
_NO_CHINESE_NO_JIEBA = """
import sys
from pathlib import Path
from bot.engine import Engine
from dossier_common.settings import Settings
from index import languages
from ingest.pipeline import ingest_paths
from tests.fakes import HashEmbedder

root = Path(sys.argv[1])
settings = Settings(home=root / "home", _env_file=None)
embedder = HashEmbedder()
(root / "docs").mkdir()
(root / "docs" / "boats.md").write_text(
    "# Boats\\n\\nThe lantern festival of Qinggang started in 1892. Fishermen sail at dusk.\\n",
    encoding="utf-8",
)
ingest_paths([root / "docs"], settings, embedder)
engine = Engine(settings, embedder=embedder)
engine.warm()
assert "jieba" not in sys.modules, "warm() loaded jieba"
answer = engine.ask("灯笼船节始于哪一年？")
assert languages._jieba.cache_info().currsize == 0, "a Chinese question loaded jieba"
assert "jieba" not in sys.modules
(root / "docs" / "lanterns.md").write_text(sys.argv[2], encoding="utf-8")
ingest_paths([root / "docs"], settings, embedder)
answer = engine.ask("灯笼船节始于哪一年？")
assert languages._jieba.cache_info().currsize == 1, "jieba not used over Chinese documents"
print(answer.retrieved[0].source)
"""


@needs_jieba
def test_chinese_question_over_an_index_without_chinese_never_loads_jieba(tmp_path):
    """Its Chinese words could match nothing: neither warm() nor the question loads jieba's
    dictionary (0.5-1 s of a cold `dossier ask`, ~70 MiB for the bot). Once a Chinese document
    is ingested, the same process segments the question and finds it. In a fresh process,
    since this session may have loaded jieba already."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", _NO_CHINESE_NO_JIEBA, str(tmp_path), LANTERNS],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "lanterns.md"


@needs_jieba
def test_index_built_while_answering_without_segmentation_still_has_jieba_words():
    """An index (re)built during a question over an index without Chinese (another process
    ingested Chinese meanwhile) holds jieba's words, not the question's stand-in pieces."""
    from index.keywords import KeywordIndex

    with languages.chinese_segmentation(False):
        index = KeywordIndex(["zh", "en"], ["福州市公安局", "Police stations in Canada"])
    assert index.has_han_terms
    # 公安 and 公安局 are jieba's words of the text; its pieces would be 福州, 市公, 安局.
    assert [i for i, _ in index.search("公安局", 2)] == ["zh"]
    assert not KeywordIndex(["en"], ["Police stations in Canada"]).has_han_terms
