"""Every kind of question, end to end on a small hand-made corpus, and the rules behind them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.evaluate import load_questions, run_eval
from bot.kinds import classify, focus, head_phrase, parts
from bot.prompts import CANNOT_ANSWER
from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from index.sentences import split_sentences
from ingest.pipeline import ingest_paths
from tests.conftest import SHARED, need_shared
from tests.fakes import HashEmbedder

OPEN_DEV = SHARED / "eval" / "report-open-dev.jsonl"
DEV = SHARED / "eval" / "report-dev.jsonl"


def _filler(topic: str, n: int) -> str:
    """Paragraphs on an unrelated matter, so that the facts below land in separate chunks."""
    return "\n\n".join(
        f"The {topic} committee met on day {i} to review the paperwork, the rota and the budget of the "
        f"quarter, and it agreed to meet again the following week in the same room at the same hour "
        f"after a long discussion of minor points that changed nothing of substance for anybody."
        for i in range(n)
    )


HARBOUR = f"""# Harbour Safety Report 2025

The harbour authority inspected 42 piers during 2025 and found 7 that needed urgent repairs.

## Findings

The inspectors identified three causes of pier damage. The first cause was storm surge from the October gales, which lifted the decking of four piers.

{_filler("harbour", 6)}

A second cause was corrosion of the steel pilings, which had not been painted since 2009.

{_filler("pier", 6)}

The third cause was collisions by fishing boats entering the harbour at night without lights.

## Recommendations

The report recommends repainting all steel pilings by 2027 and lighting the harbour entrance.
"""

LIGHTHOUSE = """The Old Lighthouse at Carrick Point

The lighthouse at Carrick Point was built in 1851 by the engineer Mary Alston.

Its lamp burned whale oil until 1902, when it was converted to paraffin.

The last keeper, Tom Reid, left in 1987 when the light was automated.

Today the tower is a museum that welcomes about 12,000 visitors a year.
"""

FERRY = """Island Ferry Timetable

In summer the ferry to the island runs every 30 minutes from six in the morning until midnight.

In winter the ferry runs once an hour, and the last crossing leaves at nine in the evening.

Tickets cost 4 pounds for adults and 2 pounds for children in every season.
"""


def _small_engine(root: Path, embedder) -> Engine:
    docs = root / "docs"
    docs.mkdir()
    (docs / "harbour-safety-report.md").write_text(HARBOUR, encoding="utf-8")
    (docs / "lighthouse-history.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    (docs / "ferry-timetable.txt").write_text(FERRY, encoding="utf-8")
    settings = Settings(home=root / "home", _env_file=None)
    report = ingest_paths([docs], settings, embedder)
    assert report.ok and report.added == 3
    return Engine(settings, embedder=embedder)


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory: pytest.TempPathFactory, embedder):
    """The three small documents with the real model: for what the answers quote."""
    engine = _small_engine(tmp_path_factory.mktemp("kinds"), embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def fake_small_engine(tmp_path_factory: pytest.TempPathFactory):
    """The same documents with the fake embedder: for document lookup, kinds and brief plumbing."""
    engine = _small_engine(tmp_path_factory.mktemp("kinds-fake"), HashEmbedder())
    yield engine
    engine.close()


def _quoted(answer) -> None:
    """Every citation's quote is verbatim in the cited passage's source."""
    by_id = {p.id: p for p in answer.retrieved}
    for c in answer.citations:
        assert c.quote in by_id[c.passage_id].text


def test_summary_of_a_named_document_comes_from_it_alone(small_engine):
    answer = small_engine.ask("Summarize the document about the old lighthouse.")
    assert answer.kind == "overview" and not answer.abstained
    bullets = answer.text.splitlines()
    assert len(bullets) >= 3 and all(re.match(r"- .+ \[\d+\]$", b) for b in bullets)
    assert {c.source for c in answer.citations} == {"lighthouse-history.txt"}
    assert "1851" in answer.text
    _quoted(answer)


def test_summary_of_the_collection_has_one_line_per_document(fake_small_engine):
    answer = fake_small_engine.summary()
    lines = answer.text.splitlines()
    assert len(lines) == 3
    assert sorted(line.split(":")[0] for line in lines) == [
        "- ferry-timetable.txt",
        "- harbour-safety-report.md",
        "- lighthouse-history.txt",
    ]
    assert {c.source for c in answer.citations} == {
        "ferry-timetable.txt",
        "harbour-safety-report.md",
        "lighthouse-history.txt",
    }
    assert fake_small_engine.summary("ferry-timetable.txt").citations[0].source == "ferry-timetable.txt"


def test_list_gathers_items_from_three_passages(small_engine):
    answer = small_engine.ask("Which causes of pier damage did the inspectors identify?")
    assert answer.kind == "list" and not answer.abstained
    for item in ("storm surge", "corrosion", "collisions"):
        assert item in answer.text
    quoted_from = {c.passage_id for c in answer.citations}
    assert len(quoted_from) >= 2  # the three facts sit in chunks far apart
    assert all(line.startswith("- ") for line in answer.text.splitlines())
    _quoted(answer)


def test_yes_no_leads_with_the_sentence_that_settles_it(small_engine):
    answer = small_engine.ask("Did the inspectors find piers that needed urgent repairs?")
    assert answer.kind == "yesno" and not answer.abstained
    assert answer.text.startswith("The harbour authority inspected 42 piers")
    assert not re.match(r"(?i)(yes|no)\b", answer.text)


def test_comparison_quotes_both_sides(small_engine):
    answer = small_engine.ask("How does the summer timetable compare with the winter timetable?")
    assert answer.kind == "compare" and not answer.abstained
    assert "every 30 minutes" in answer.text and "once an hour" in answer.text


def test_unanswerable_list_is_declined(small_engine):
    answer = small_engine.ask("Which species of seabirds nest on the piers?")
    assert answer.abstained and answer.text == CANNOT_ANSWER and not answer.citations


def test_question_kinds_and_their_parts():
    cases = {
        "Summarize the report.": "overview",
        "What is this article about?": "overview",
        "Give me the key points in a few bullets.": "overview",
        "Which Chinese provinces are mentioned?": "list",
        "List the methods China uses to bring targets back.": "list",
        "Is Vancouver known to have a station?": "yesno",
        "In his essay on how to disagree, does he think DH6 is always convincing?": "yesno",
        "Why does Dahlin believe there are more stations?": "why",
        "How does Y Combinator advise so many startups?": "how",
        "How many kidnappings did the organization identify?": "factoid",
        "Compare the September report with the January report.": "compare",
        "Which agencies and which provinces are behind the stations?": "multihop",
        "Who founded Safeguard Defenders?": "factoid",
    }
    assert {q: classify(q) for q in cases} == cases
    assert focus("Which operations does the article name?") == "Which operations ?"
    assert focus("According to the essay on schools, why are nerds unpopular?") == "why are nerds unpopular?"
    assert parts("Compare the September report with the January report.", "compare") == [
        "the September report",
        "the January report",
    ]
    assert parts("Which agencies and which provinces are behind the stations?", "multihop") == [
        "Which agencies are behind the stations",
        "which provinces are behind the stations",
    ]
    assert head_phrase("Which anti-bullying programs does he recommend?") == "anti-bullying programs"


def test_briefs_follow_edits_and_deletes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text(FERRY, encoding="utf-8")
    (docs / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", _env_file=None)
    embedder = HashEmbedder()
    ingest_paths([docs], settings, embedder)

    def brief(source: str) -> list[str] | None:
        manifest = Manifest(Layout(settings.home).manifest)
        try:
            spans = manifest.brief(source)
            text = manifest.file_text(source) or ""
        finally:
            manifest.close()
        return None if spans is None else [text[a:b] for a, b, _ in spans]

    before = brief("ferry.txt")
    assert before and all(sentence in FERRY for sentence in before)
    edited = FERRY + "\nFrom 2026 the island council will run 42 extra crossings on bank holidays.\n"
    (docs / "ferry.txt").write_text(edited, encoding="utf-8")
    ingest_paths([docs], settings, embedder)
    after = brief("ferry.txt")
    assert after and all(sentence in edited for sentence in after)
    assert any("42 extra crossings" in s for s in after)  # a figure-bearing sentence joins the brief
    assert brief("lighthouse.txt")  # the other file's brief is untouched
    (docs / "ferry.txt").unlink()
    ingest_paths([docs], settings, embedder)
    assert brief("ferry.txt") is None


_SENTENCE_START = re.compile(r"^[A-Z0-9“\"‘'(\[]")


def _units(text: str) -> list[str]:
    """The quoted units of an answer: bullets or runs of text between [n] markers."""
    units = []
    for line in text.splitlines():
        line = re.sub(r"^- (\S+: )?", "", line.strip())
        units += [u.strip() for u in re.split(r"\s*\[\d+\]\s*", line) if u.strip()]
    return units


def test_no_answer_starts_with_a_fragment(report_engine):
    """A property over both report dev sets: every quoted unit opens like a sentence, and no
    sentence is quoted twice (overlapping passages hold the same text)."""
    questions = load_questions(need_shared(OPEN_DEV)) + load_questions(need_shared(DEV))
    for q in questions:
        answer = report_engine.ask(q.question)
        if answer.abstained:
            continue
        sentences = []
        for unit in _units(answer.text):
            assert _SENTENCE_START.match(unit), (q.id, unit)
            assert len(unit.split()) >= 5, (q.id, unit)
            sentences += [unit[a:b] for a, b in split_sentences(unit)]
        assert len(sentences) == len(set(sentences)), (q.id, answer.text)
        _quoted(answer)


def test_open_dev_set_meets_the_bars(report_engine):
    report = run_eval(report_engine, load_questions(need_shared(OPEN_DEV)), k=5)
    s = report["summary"]
    assert s["n"] == 14
    assert s["answer_accuracy"] >= 0.85
    assert s["false_abstention_rate"] <= 0.1
    assert s["abstention_accuracy"] == 1.0  # both unanswerable questions declined
    assert set(s["by_kind"]) == {"overview", "list", "yesno", "why", "compare", "multihop"}
    assert s["by_kind"]["overview"]["n"] == 4
    assert s["citation_location_accuracy"] == 1.0  # every quote at the lines its citation names
    assert all(ok == n for ok, n in (r["citation_locations"] for r in report["results"]))
    assert all(r["kind"] for r in report["results"])


def test_ask_json_carries_the_kind(fake_small_engine):
    out = fake_small_engine.ask("Which causes of pier damage did the inspectors identify?").to_dict()
    assert out["kind"] == "list"
    assert json.loads(json.dumps(out))["kind"] == "list"


def test_document_named_by_its_file_name(fake_small_engine):
    assert fake_small_engine.find_document("ferry-timetable.txt") == "ferry-timetable.txt"
    assert fake_small_engine.find_document("Island Ferry Timetable") == "ferry-timetable.txt"
    with pytest.raises(Exception, match="No indexed document matches"):
        fake_small_engine.find_document("annual accounts of the bakery")


def test_summary_never_abstains_for_an_indexed_document(fake_small_engine):
    for doc in fake_small_engine.documents():
        answer = fake_small_engine.summary(doc.source)
        assert not answer.abstained and answer.citations, doc.source


def test_only_fragments_above_the_bar_means_no_answer(embedder):
    from bot.extractive import ExtractiveAnswerer
    from bot.types import Passage

    # The only sentence about the lamp is the tail of a broken one: it cannot be quoted alone.
    text = "and the lamp burned whale oil until the tower was rebuilt in the spring of that year."
    passage = Passage(id="p", source="x.txt", text=text, location="line 1", score=1.0, end=len(text))
    for kind in ("factoid", "list", "why", "compare"):
        draft = ExtractiveAnswerer(embedder, threshold=0.2).answer(
            "What did the lamp burn?", [passage], kind=kind
        )
        assert draft.abstained and draft.text == CANNOT_ANSWER, kind


KEEPERS = f"""# Keepers Who Stayed

Lighthouse keeping was lonely work, and few keepers stayed at one light for long.

{_filler("keepers", 5)}

Edith Marlowe, for example, never left the Carrick lighthouse in forty years of service.

{_filler("lamp", 5)}

It was similar with Owen Pryce. He never left the northern lighthouse in thirty winters.
Hannah Voss would probably get my vote for the most devoted of them all. Nobody ever stayed longer.

{_filler("tower", 5)}

The lamps themselves were cleaned every morning and trimmed every evening by whoever kept them.
"""


@pytest.fixture(scope="module")
def keepers_engine(tmp_path_factory: pytest.TempPathFactory, embedder):
    root = tmp_path_factory.mktemp("keepers")
    docs = root / "docs"
    docs.mkdir()
    (docs / "keepers.md").write_text(KEEPERS, encoding="utf-8")
    (docs / "ferry-timetable.txt").write_text(FERRY, encoding="utf-8")
    settings = Settings(home=root / "home", _env_file=None)
    assert ingest_paths([docs], settings, embedder).ok
    engine = Engine(settings, embedder=embedder)
    yield engine
    engine.close()


def test_list_of_names_quotes_each_named_item_once(keepers_engine):
    # The items sit in chunks far apart, and the third follows the second without repeating
    # any word of the question: a list of named things takes each sentence that names someone
    # not named yet, and one next to an item even when it matches the question poorly.
    answer = keepers_engine.ask(
        "Which famous examples of keepers who never left their lighthouse does the author give?"
    )
    assert answer.kind == "list" and not answer.abstained, answer.text
    for name in ("Edith Marlowe", "Owen Pryce", "Hannah Voss"):
        assert answer.text.count(name) == 1, answer.text
    assert {c.source for c in answer.citations} == {"keepers.md"}
    bullets = answer.text.splitlines()
    assert all(line.startswith("- ") for line in bullets)
    # After the first, every bullet names someone.
    assert all(re.search(r"Edith|Owen|Hannah", line) for line in bullets[1:]), answer.text
    _quoted(answer)


def test_names_of_a_sentence():
    from bot.answer_types import asks_for_names, names_in

    known = frozenset({"airbnb", "stripe"})
    assert names_in("[3]Airbnb is a classic example of this technique.", known) == {"airbnb"}
    assert names_in("None took better advantage of it than Stripe.", known) == {"stripe"}
    assert names_in("P. G. Wodehouse would get my vote.", known) == {"wodehouse"}
    # A capitalised first word is a name only when the documents capitalise it elsewhere too.
    assert names_in("Certainly no one ever made it look easier.", known) == set()
    assert asks_for_names("Which historical figures does he use as examples?")
    assert not asks_for_names("List the methods China uses to bring targets back.")
