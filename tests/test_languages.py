"""Language detection, CJK keyword terms and CJK sentence boundaries (index.languages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from index import languages
from index.languages import (
    bigrams,
    cjk_sentence_spans,
    cjk_terms,
    detect_language,
    has_cjk,
    split_cjk_sentences,
    strip_cjk,
)

needs_jieba = pytest.mark.skipif(not languages.segmenter_available(), reason="jieba is not installed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("加拿大有多少个海外警察站？", "zh"),
        ("加拿大有多少個海外警察站？", "zh"),  # Traditional is zh too
        ("保护卫士 (Safeguard Defenders) 的报告说有五十四个警察站。", "zh"),
        ("東京の警察署はどこにありますか？", "ja"),
        ("서울에 있는 해외 경찰서는 몇 개입니까?", "ko"),
        ("How many overseas police stations are there in Canada?", "en"),
        ("Markham police", "en"),  # short Latin text: the home language
        ("The report names the station 福清 in its list of Fujian offices.", "en"),
        ("Wie viele Polizeistationen gibt es eigentlich in Kanada und wer betreibt sie?", "other"),
        ("Сколько полицейских участков в Канаде?", "other"),
        ("", "other"),
        ("54 / 30", "other"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_has_and_strip_cjk() -> None:
    text = "The 110 Overseas report (海外110) names 54 stations."
    assert has_cjk(text)
    assert not has_cjk("The 110 Overseas report names 54 stations.")
    assert strip_cjk(text).split() == [
        "The",
        "110",
        "Overseas",
        "report",
        "(",
        "110)",
        "names",
        "54",
        "stations.",
    ]


@needs_jieba
def test_chinese_segmentation_gives_words() -> None:
    terms = cjk_terms("保护卫士的报告发现了多少个海外警察站？")
    assert terms == ["保护", "卫士", "报告", "发现", "海外", "警察", "站"]
    # function words and question words are gone
    assert not {"的", "了", "多少", "个"} & set(terms)


@needs_jieba
def test_compound_splits_into_pieces_a_question_shares() -> None:
    document = cjk_terms("报告指出，福州市公安局在多伦多设立了三个海外警察站。")
    question = cjk_terms("多伦多有几个海外警察站？")
    assert {"海外", "警察", "站"} <= set(document)
    assert {"多伦多", "海外", "警察", "站"} <= set(question) & set(document)


@needs_jieba
def test_search_mode_keeps_the_long_word_and_its_parts() -> None:
    assert {"加拿大", "加拿"} <= set(cjk_terms("加拿大的警察站"))


def test_cjk_terms_ignore_non_cjk_text() -> None:
    assert cjk_terms("How many stations are there?") == []
    assert "report" not in cjk_terms("The report 海外警察站")


def test_bigrams() -> None:
    assert bigrams("警察站") == ["警察", "察站"]
    assert bigrams("站") == ["站"]
    assert bigrams("") == []


def test_japanese_and_korean_fall_back_to_bigrams() -> None:
    assert cjk_terms("警察署はどこ") == ["警察", "察署", "署は", "はど", "どこ"]
    assert cjk_terms("해외 경찰서") == ["해외", "경찰", "찰서"]
    # a known language skips detection
    assert cjk_terms("警察署", language="ja") == ["警察", "察署"]


def test_chinese_falls_back_to_bigrams_without_jieba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(languages, "_jieba", lambda: None)
    assert cjk_terms("海外警察站") == ["海外", "外警", "警察", "察站"]


def test_jieba_loads_quietly_and_offline() -> None:
    """First use in a fresh process prints nothing (jieba logs its dictionary load to stderr
    unless silenced) and needs no network: the dictionary ships in the wheel."""
    code = (
        "import socket\n"
        "def no_net(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = no_net\n"
        "from index.languages import cjk_terms\n"
        "print('|'.join(cjk_terms('海外警察站')))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip() == "海外|警察|站"


def test_sentences_split_on_cjk_ends() -> None:
    text = "加拿大有三个警察站。它们都在多伦多！真的吗？报告这样说；警方在调查"
    assert split_cjk_sentences(text) == [
        "加拿大有三个警察站。",
        "它们都在多伦多！",
        "真的吗？",
        "报告这样说；",
        "警方在调查",
    ]


def test_closing_quotes_and_repeated_marks_stay_with_their_sentence() -> None:
    text = "他说：“这是真的。”然后走了。你信吗？！我不信（至少现在。）下一句"
    assert split_cjk_sentences(text) == [
        "他说：“这是真的。”",
        "然后走了。",
        "你信吗？！",
        "我不信（至少现在。）",
        "下一句",
    ]


def test_ascii_marks_end_a_sentence_only_after_cjk() -> None:
    assert split_cjk_sentences("真的吗?是的!") == ["真的吗?", "是的!"]
    assert split_cjk_sentences("Is it 110? Yes.") == ["Is it 110? Yes."]


def test_japanese_quote_followed_by_to_is_one_sentence() -> None:
    text = "「本当か？」と彼は聞いた。報告書は出た。"
    assert split_cjk_sentences(text) == ["「本当か？」と彼は聞いた。", "報告書は出た。"]


def test_blank_line_ends_a_sentence_and_spans_are_trimmed() -> None:
    text = "  第一段没有句号\n\n\u3000第二段。 "
    spans = cjk_sentence_spans(text)
    assert [text[a:b] for a, b in spans] == ["第一段没有句号", "第二段。"]
    # a hard-wrapped line is not a boundary
    assert split_cjk_sentences("这一句被\n折行了。") == ["这一句被\n折行了。"]


def test_spans_within_a_range() -> None:
    text = "前言。甲句。乙句。后记。"
    assert cjk_sentence_spans(text, 3, 9) == [(3, 6), (6, 9)]


@needs_jieba
def test_without_segmentation_chinese_becomes_bigrams_and_jieba_is_not_loaded() -> None:
    """Inside `chinese_segmentation(False)` (a question over an index without Chinese) Chinese
    runs lose their function words and are cut into two-character pieces (about one per
    word: only their number matters) and jieba's dictionary is never loaded; Japanese keeps its bigrams; outside, jieba's words
    again. In a fresh process, since this session may have loaded jieba already."""
    code = (
        "import sys\n"
        "from index import languages\n"
        "from index.keywords import terms\n"
        "with languages.chinese_segmentation(False):\n"
        "    assert not languages.segmenting_chinese()\n"
        "    assert terms('Canada 加拿大的警察站') == ['canada', '加拿', '大', '警察', '站']\n"
        "    assert languages.cjk_terms('什么是海外警察站') == ['海外', '警察', '站']\n"
        "    assert languages.cjk_terms('警察署はどこ') == ['警察', '察署', '署は', 'はど', 'どこ']\n"
        "assert languages._jieba.cache_info().currsize == 0\n"
        "assert 'jieba' not in sys.modules\n"
        "assert languages.segmenting_chinese()\n"
        "print('|'.join(languages.cjk_terms('海外警察站')))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "海外|警察|站"
