"""Grounded answers over the real report: citations, abstention, follow-ups, eval bars, CLI contract."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.answer_types import fits_type
from bot.engine import Engine
from bot.evaluate import holds, is_correct, load_questions, ndcg_at_10, percentile, run_eval
from bot.followup import standalone_question
from bot.langchain_retriever import DossierRetriever
from bot.prompts import CANNOT_ANSWER
from bot.retrieval import named_documents
from bot.types import Passage, Turn
from dossier_common.errors import NoIndexError, QuestionError
from dossier_common.settings import Settings
from ingest.loaders import fold_for_match
from ingest.pipeline import ingest_paths
from tests.conftest import DEV_SET, ROOT, need_shared
from tests.onnx_models import seed_models


def test_answer_quotes_and_cites_its_sources(report_engine):
    answer = report_engine.ask("How many kidnappings did the organization identify?")
    assert not answer.abstained
    assert "22" in answer.text
    assert answer.citations and "[1]" in answer.text
    by_id = {p.id: p for p in answer.retrieved}
    source_text = report_engine._manifest.file_text(answer.citations[0].source)
    for c in answer.citations:
        assert f"[{c.n}]" in answer.text
        assert c.quote in by_id[c.passage_id].text  # verbatim from the passage it cites
        assert c.quote in source_text
        assert c.location.startswith(("lines", "line", "§"))
    assert len(answer.text) < 600


def test_off_topic_question_abstains_with_closest_passages(report_engine):
    answer = report_engine.ask("What recipe does the article recommend for dumplings?")
    assert answer.abstained
    assert answer.text == CANNOT_ANSWER
    assert answer.citations == ()
    assert answer.retrieved  # the closest passages are still shown


def test_follow_up_carries_the_subject_over(report_engine):
    first = report_engine.ask("Who founded Safeguard Defenders?")
    assert "Dahlin" in first.text
    history = [Turn(first.question, first.text)]
    follow = report_engine.ask("Where is his organization based?", history)
    assert "Safeguard" in follow.standalone_question
    assert "Spain" in follow.text


def test_standalone_question_only_when_referring_back():
    history = [Turn("Who founded Safeguard Defenders?", "Peter Dahlin [1]")]
    assert (
        standalone_question("Where is his organization based?", history)
        == "Where is Safeguard Defenders based?"
    )
    assert standalone_question("When was it founded?", history) == "When was Safeguard Defenders founded?"
    assert standalone_question("And the report?", history) == "And the report? (Safeguard Defenders)"
    own = "How many stations are in Toronto?"
    assert standalone_question(own, history) == own
    assert standalone_question("Where is it?", []) == "Where is it?"


def test_follow_up_of_a_follow_up_keeps_the_referent():
    history = [
        Turn("Who founded Safeguard Defenders?", "Peter Dahlin [1]"),
        Turn("Where is his organization based?", "Spain [1]"),
    ]
    # the referent comes from the whole conversation, not only the question before
    assert standalone_question("And what is his job title there?", history) == (
        "And what is Safeguard Defenders job title there?"
    )
    assert standalone_question("What is its budget?", history) == "What is Safeguard Defenders budget?"
    # a question that stands on its own starts a new referent
    history.append(Turn("How many police stations were found in total?", "54 [1]"))
    rewritten = standalone_question("Where are they?", history)
    assert "police stations" in rewritten and "Safeguard" not in rewritten


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "Please ask a question: it is empty."),
        ("   \n\t ", "Please ask a question: it is empty."),
        ("x" * 10_000, "That question is 10,000 characters long; the limit is 2,000. Please shorten it."),
    ],
)
def test_bad_questions_get_a_clear_message(fake_report_engine, question, message):
    with pytest.raises(QuestionError) as err:
        fake_report_engine.ask(question)
    assert str(err.value) == message


def test_no_index_yet(settings, fake_embedder):
    with pytest.raises(NoIndexError, match=r"No documents indexed yet: run `dossier ingest PATH`"):
        Engine(settings, embedder=fake_embedder).ask("anything?")


def test_keyword_index_follows_reingest(tmp_path, fake_embedder, corpus_dir):
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([corpus_dir], settings, fake_embedder)
    engine = Engine(settings, embedder=fake_embedder)
    before = engine.ask("Where does the Zorblat festival take place?")
    assert before.abstained
    (corpus_dir / "festival.txt").write_text(
        "Local events\n\nThe Zorblat festival takes place in Quillport every March, with lantern boats.",
        encoding="utf-8",
    )
    ingest_paths([corpus_dir], settings, fake_embedder)  # as another process would
    after = engine.ask("Where does the Zorblat festival take place?")
    assert not after.abstained and "Quillport" in after.text
    assert after.citations[0].source == "festival.txt"
    keyword_hits = engine._retriever.keyword.search("Zorblat Quillport", 3)
    assert keyword_hits and keyword_hits[0][0] in {c for p in after.retrieved for c in p.chunk_ids}
    engine.close()


def test_langchain_retriever_returns_documents(fake_report_engine):
    fake_report_engine.ask("warm up")
    retriever = DossierRetriever(hybrid=fake_report_engine._retriever, k=3)
    docs = retriever.invoke("Fox Hunt anti-corruption campaign")
    assert 1 <= len(docs) <= 3
    assert "Fox Hunt" in docs[0].page_content
    assert docs[0].metadata["source"] == "overseas-police-stations-canada.txt"


def test_dev_set_meets_the_quality_bars(report_engine):
    report = run_eval(report_engine, load_questions(need_shared(DEV_SET)), k=5)
    s = report["summary"]
    assert s["n"] == 16
    assert s["hit_at_k"] == 1.0
    assert s["answer_accuracy"] >= 0.95
    assert s["citation_accuracy"] >= 0.9
    assert s["abstention_accuracy"] >= 0.75
    assert s["false_abstention_rate"] <= 0.1
    assert s["median_answer_chars"] < 300
    assert s["by_kind"]["factoid"]["n"] == 16  # the file gives no kinds: all count as factoid
    # Every citation's quote is at the lines it names in the file on disk.
    assert s["citation_location_accuracy"] == 1.0
    assert all(ok == n for ok, n in (r["citation_locations"] for r in report["results"]))
    assert sum(n for _, n in (r["citation_locations"] for r in report["results"])) >= 12
    result = report["results"][0]
    assert set(result) >= {
        "id",
        "answer",
        "abstained",
        "hit_rank",
        "correct",
        "citations_ok",
        "retrieved",
        "ms",
    }


def test_eval_scoring_rules_on_a_hand_made_set():
    assert is_correct("There are 54 stations in 30 countries [1]", [["54"], ["30", "thirty"]])
    assert not is_correct("There are 54 stations [1]", [["54"], ["30", "thirty"]])
    assert is_correct("The “110 Overseas” report", [['"110 Overseas"']])  # curly quotes folded
    evidence = "identified 54 Chinese overseas police stations in 30 countries"
    assert holds(
        "The paper identified 54 Chinese overseas police stations in 30 countries, including", evidence
    )
    # Half of the evidence in one contiguous run is enough (quotes straddle chunk boundaries).
    assert holds("...the report identified 54 Chinese overseas police", evidence)
    assert not holds("54 stations, 30 countries", evidence)
    assert fold_for_match("It’s  “X”") == 'it\'s "x"'
    assert ndcg_at_10(["a.txt", "b.txt"], ["a.txt"]) == 1.0
    assert ndcg_at_10(["b.txt", "a.txt"], ["a.txt"]) == pytest.approx(1 / 1.585, abs=1e-3)
    assert ndcg_at_10(["b.txt"], ["a.txt"]) == 0.0


def test_percentile_is_nearest_rank():
    # Always one of the values (no interpolation): `dossier eval` and bench/ both use it.
    tens = [float(v) for v in range(10, 0, -1)]  # unsorted on purpose
    assert [percentile(tens, p) for p in (0, 10, 50, 51, 95, 100)] == [1.0, 1.0, 5.0, 6.0, 10.0, 10.0]
    assert percentile([3.5], 95) == 3.5
    assert math.isnan(percentile([], 50))


def test_eval_summary_on_a_tiny_file(report_engine, tmp_path):
    lines = [
        {"id": "a", "question": "Who founded Safeguard Defenders?", "answers": [["Dahlin"]],
         "evidence": "Peter Dahlin, founder and director of Safeguard Defender", "answerable": True},
        {"id": "b", "question": "What recipe does the article recommend for dumplings?", "answers": [],
         "evidence": "", "answerable": False},
        {"id": "c", "question": "Which city has a large Chinese diaspora?", "answers": [],
         "evidence": "", "relevant_sources": ["overseas-police-stations-canada.txt"], "answerable": True},
    ]  # fmt: skip
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    report = run_eval(report_engine, load_questions(path), k=3)
    s = report["summary"]
    assert s["n"] == 3 and s["answer_accuracy"] == 1.0 and s["abstention_accuracy"] == 1.0
    assert s["hit_at_k"] == 1.0 and s["ndcg_at_10"] == 1.0
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["b"]["correct"] is None and by_id["b"]["hit_rank"] is None
    assert by_id["a"]["hit_rank"] in (1, 2, 3) and by_id["a"]["citations_ok"] is True


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    seed_models(home)  # the session's ONNX export: no export per run
    env = {**os.environ, "DOSSIER_HOME": str(home), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cli_ask_json_contract(report_index, dossier_cli):
    proc = dossier_cli(
        "ask", "Operation Fox Hunt was launched as part of which campaign?", "--json", home=report_index.home
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"question", "answer", "abstained", "citations", "retrieved", "timings_ms"}
    assert out["abstained"] is False and "anti-corruption" in out["answer"]
    assert all(set(c) == {"n", "source", "location", "quote"} for c in out["citations"])
    assert all(set(r) == {"source", "location", "text", "score"} for r in out["retrieved"])
    scores = [r["score"] for r in out["retrieved"]]
    assert scores == sorted(scores, reverse=True)


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, fake_report_index):
    proc = _cli("ask", "Who founded it?", home=tmp_path / "empty-home")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "dossier: No documents indexed yet: run `dossier ingest PATH`"
    proc = _cli("ask", "   ", home=fake_report_index.home)
    assert proc.returncode == 2 and "empty" in proc.stderr and "Traceback" not in proc.stderr


SMALL_CORPUS = {
    "lighthouse.md": (
        "# The Harbor Lighthouse\n\nThe Harbor Lighthouse was built in 1872 by the engineer Margaret Olsen. "
        "It stands 42 metres tall on the northern cliff above the town of Brekkvik.\n\n## Keepers\n\n"
        "The last keeper, Tomas Berg, left the lighthouse in 1989 when the light was automated. "
        "Visitors can climb the tower on Sundays in summer.\n"
    ),
    "bridge.md": (
        "# The Old Bridge\n\nThe Old Bridge was painted red in 1950 by the town council. "
        "It carries the coast road across the Brekk river on three stone arches.\n"
    ),
}


def test_cli_summary_of_the_collection_and_of_one_document(tmp_path, embedder, dossier_cli):
    corpus = tmp_path / "small"
    corpus.mkdir()
    for name, text in SMALL_CORPUS.items():
        (corpus / name).write_text(text)
    home = tmp_path / "home"
    ingest_paths([corpus], Settings(home=home, _env_file=None), embedder)

    proc = dossier_cli("summary", home=home)
    assert proc.returncode == 0, proc.stderr
    text, _, sources = proc.stdout.partition("\n\nSources:\n")
    lines = text.strip().split("\n")  # one cited line per document
    assert sorted(line.split(":")[0] for line in lines) == ["- bridge.md", "- lighthouse.md"]
    assert all(line.endswith(f"[{n}]") for n, line in enumerate(lines, 1)), lines
    assert "[1] " in sources and "[2] " in sources

    proc = dossier_cli("summary", "Harbor Lighthouse", "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["document"] == "lighthouse.md" and out["kind"] == "overview" and out["abstained"] is False
    bullets = out["answer"].split("\n")
    assert len(bullets) >= 3 and all(b.startswith("- ") and b.endswith("]") for b in bullets), bullets
    assert "Margaret Olsen" in out["answer"] and "red" not in out["answer"]
    cited = {int(n) for b in bullets for n in re.findall(r"\[(\d+)\]$", b)}
    assert len(cited) >= 1 and cited == {c["n"] for c in out["citations"]}  # each bullet cited
    assert {c["source"] for c in out["citations"]} == {"lighthouse.md"}

    proc = dossier_cli("summary", "zebra crossing", home=home)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("dossier: No indexed document matches 'zebra crossing'")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_llm_answerer_through_the_engine(fake_report_index, fake_embedder, openai_stub, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    settings = fake_report_index.model_copy(update={"llm": "openai:gpt-test", "llm_timeout": 5})
    engine = Engine(settings, embedder=fake_embedder)
    openai_stub.enqueue("Safeguard Defenders is based in Spain [1][9].")
    answer = engine.ask("In which country is Safeguard Defenders based?")
    assert answer.text == "Safeguard Defenders is based in Spain [1]."
    assert [c.n for c in answer.citations] == [1]
    assert answer.citations[0].quote in answer.retrieved[0].text
    # The model saw numbered passages and the cannot-answer sentence.
    prompt = json.dumps(openai_stub.requests[-1])
    assert "[1]" in prompt and CANNOT_ANSWER.replace("'", "") in prompt.replace("\\u2019", "'").replace(
        "'", ""
    )
    engine.close()


def test_reader_sees_vectors_written_by_another_process(tmp_path, embedder, corpus_dir):
    """An embedded Chroma client does not see later writes by other processes: the engine
    must reopen it when the manifest says someone else committed."""
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([corpus_dir], settings, embedder)
    engine = Engine(settings, embedder=embedder)
    engine.ask("Who founded Safeguard Defenders?")
    (corpus_dir / "regatta.txt").write_text(
        "Harbour news\n\nThe Wobblefin regatta starts at Pelican Point each June."
    )
    proc = _cli("ingest", str(corpus_dir), home=settings.home)
    assert proc.returncode == 0, proc.stderr
    answer = engine.ask("Where does the Wobblefin regatta start?")
    assert "Pelican Point" in answer.text
    dense = engine._retriever.store.query(embedder.embed_query("Wobblefin regatta Pelican Point"), 1)
    assert dense and dense[0][0] in answer.retrieved[0].chunk_ids  # found by the vectors, not only BM25
    engine.close()


def _filings(folder: Path) -> None:
    """Eight look-alike filings whose title says nothing; the company is named only at the top."""
    folder.mkdir()
    companies = {"ACME": "Acme Rockets", "BOLT": "Bolt Bicycles", "CRUX": "Crux Cables", "DUNE": "Dune Dairy"}
    for n, (ticker, name) in enumerate(companies.items()):
        for year in (2022, 2023):
            body = "\n\n".join(
                f"Section {i}. Demand was steady in the quarter while costs of materials rose and margins narrowed."
                for i in range(60)
            )
            (folder / f"{year} Q3 {ticker}.txt").write_text(
                f"QUARTERLY REPORT\n\nThis report covers {name} for the third quarter of {year}.\n\n{body}\n\n"
                f"Net revenue for the quarter was {n + 1}{year} thousand dollars.",
                encoding="utf-8",
            )


def test_document_signal_finds_the_named_document(tmp_path, fake_embedder):
    _filings(tmp_path / "filings")
    question = "What was the net revenue of Crux Cables in Q3 2023?"
    found = {}
    for weight in (0.0, 0.3):
        settings = Settings(home=tmp_path / "home", document_weight=weight, _env_file=None)
        ingest_paths([tmp_path / "filings"], settings, fake_embedder)
        engine = Engine(settings, embedder=fake_embedder)
        found[weight] = engine.retrieve(question, 5)
        engine.close()
    # Nothing in the revenue line ties it to Crux Cables or 2023: only the document does.
    assert not any(p.source == "2023 Q3 CRUX.txt" and "32023 thousand" in p.text for p in found[0.0])
    assert found[0.3][0].source == "2023 Q3 CRUX.txt"
    assert any(p.source == "2023 Q3 CRUX.txt" and "32023 thousand" in p.text for p in found[0.3])


def test_named_documents_need_a_clear_gap():
    # Four filings of one company far above the rest: the question named them.
    named, gap = named_documents(
        [("a1", 8.0), ("a2", 7.9), ("a3", 7.8), ("a4", 7.8), ("b1", 1.0), ("b2", 0.9)]
    )
    assert named == {"a1", "a2", "a3", "a4"} and gap == pytest.approx(6.8 / 8.0)
    # Essays sharing a theme score close together: nobody is singled out.
    assert named_documents(
        [("e1", 5.2), ("e2", 5.1), ("e3", 4.9), ("e4", 4.8), ("e5", 4.8), ("e6", 4.6)]
    ) == (set(), 0.0)
    # Only one document has the words at all.
    assert named_documents([("only", 3.0)]) == ({"only"}, 1.0)
    assert named_documents([]) == (set(), 0.0)


def test_best_evidence_comes_first(report_engine):
    question = "Which organisation published the report on overseas police stations?"
    passages = report_engine.retrieve(question, 5)
    extractive = report_engine._extractive
    scored = extractive.score(question, passages, extractive.sentence_vectors(passages))
    assert scored[0].passage == 0


def test_keyword_index_is_cached_per_generation(tmp_path, fake_embedder, corpus_dir, monkeypatch):
    import index.keywords as keywords

    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([corpus_dir], settings, fake_embedder)
    question = "Operation Fox Hunt was launched as part of which campaign?"
    first = Engine(settings, embedder=fake_embedder)
    expected = first.ask(question)
    first.close()
    saved = list((settings.home / "keyword").glob("bm25-*"))
    assert len(saved) == 1

    loaded = []
    real_load = keywords.KeywordIndex.load.__func__
    monkeypatch.setattr(
        keywords.KeywordIndex,
        "load",
        classmethod(lambda cls, folder: loaded.append(folder) or real_load(cls, folder)),
    )
    second = Engine(settings, embedder=fake_embedder)
    again = second.ask(question)
    assert loaded == [saved[0], saved[0] / "documents"]  # a new process starts from the saved indexes
    assert [p.id for p in again.retrieved] == [p.id for p in expected.retrieved]
    second.close()

    (corpus_dir / "extra.txt").write_text("A note about lantern boats in Quillport.", encoding="utf-8")
    ingest_paths([corpus_dir], settings, fake_embedder)
    third = Engine(settings, embedder=fake_embedder)
    third.ask(question)
    third.close()
    now = list((settings.home / "keyword").glob("bm25-*"))
    assert len(now) == 1 and now != saved  # a new generation replaced the old one


def _whole(text: str) -> Passage:
    """A hand-made passage: the whole of a one-chunk source."""
    return Passage(
        id="p1", source="doc.txt", text=text, location="line 1", score=1.0, end=len(text), chunk_ids=("p1",)
    )


def test_quotes_drop_glued_headings_and_footnote_marks(embedder):
    from bot.extractive import ExtractiveAnswerer
    from index.sentences import glued_heading_length

    assert glued_heading_length("Two TypesI think you only need two kinds of people.") == len("Two Types")
    assert glued_heading_length("New Attitude to AcquisitionAnother thing I see is acquisitions.") == len(
        "New Attitude to Acquisition"
    )
    assert glued_heading_length("reportThe paper, entitled “110 Overseas”, named 54 stations.") == len(
        "report"
    )
    for whole in (
        "LinkedIn is a company that many people use.",
        "The iPhone sold well in every country.",
        "iPhone sales rose sharply in every market.",
    ):
        assert glued_heading_length(whole) == 0

    text = (
        "How do you get them to move?Two TypesI think you only need two kinds of people to create "
        "a technology hub: rich people and nerds. That is all. [4]The second reason is that nerds "
        "follow other nerds to the places where they live."
    )
    answerer = ExtractiveAnswerer(embedder, threshold=0.2)
    draft = answerer.answer("What kinds of people do you need to create a technology hub?", [_whole(text)])
    assert draft.text.startswith("I think you only need two kinds of people")
    assert "[4]" not in draft.text and "Two Types" not in draft.text
    for citation in draft.citations:
        assert citation.quote in text and not citation.quote.startswith("Two Types")


def test_context_chunks_join_the_neighbours(tmp_path, fake_embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    paragraphs = [
        f"Paragraph {i}. The lighthouse keeper logged the weather, the ships and the lamp oil on day {i}."
        for i in range(40)
    ]
    paragraphs[20] = "The keeper's cat, Admiral Whiskers, slept in the lamp room every winter night."
    (folder / "log.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    question = "Where did Admiral Whiskers sleep?"
    found = {}
    for n in (0, 1):
        settings = Settings(home=tmp_path / "home", context_chunks=n, _env_file=None)
        ingest_paths([folder], settings, fake_embedder)
        engine = Engine(settings, embedder=fake_embedder)
        found[n] = engine.retrieve(question, 1)[0]
        engine.close()
    plain, wide = found[0], found[1]
    assert "Admiral Whiskers" in plain.text and "Admiral Whiskers" in wide.text
    assert wide.start < plain.start and wide.end > plain.end  # a chunk on each side
    assert len(wide.chunk_ids) == len(plain.chunk_ids) + 2
    text = (folder / "log.txt").read_text(encoding="utf-8")
    assert wide.text == text[wide.start : wide.end]


def test_an_overlong_sentence_is_quoted_by_its_best_clause(embedder):
    from bot.extractive import ExtractiveAnswerer

    filler = ", ".join(
        f"the {w} committee met on a rainy afternoon in the old town hall"
        for w in ("first", "second", "third", "fourth", "fifth")
    )
    sentence = (
        f"{filler}, and the harbour master reported that the new lighthouse lamp burns whale oil, {filler}."
    )
    text = f"Minutes of the year. {sentence[0].upper()}{sentence[1:]} The end."
    draft = ExtractiveAnswerer(embedder, threshold=0.2).answer(
        "What does the new lighthouse lamp burn?", [_whole(text)]
    )
    assert not draft.abstained
    # The clause that answers does not open like a sentence: the quote keeps the sentence's
    # start and ends with that clause, marked as cut.
    assert draft.text.startswith("The first committee met") and draft.text.endswith("whale oil … [1]")
    assert len(draft.text) < len(sentence)
    assert draft.citations[0].quote in text


def test_a_question_for_an_amount_of_money_needs_one(report_engine, tmp_path, embedder):
    """The report names Safeguard Defenders' founder, never its budget: a sentence about the
    organisation does not answer "what is its budget". Where the amount is written, it is quoted."""
    declined = report_engine.ask("What is the budget of Safeguard Defenders?")
    assert declined.abstained and declined.citations == ()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.txt").write_text(
        "The Elm Street garden was founded by volunteers in 2011 on a former parking lot.\n\n"
        "The garden's annual budget is $12,500, paid by the city council.\n\n"
        "The Riverside garden was founded in 2015 and grows squash for the food bank.\n",
        encoding="utf-8",
    )
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([docs], settings, embedder)
    engine = Engine(settings, embedder=embedder)
    answer = engine.ask("What is the budget of the Elm Street garden?")
    assert not answer.abstained and "$12,500" in answer.text
    engine.close()
    # Only a question for the amount itself: a reason, or a count of years, asks for something else.
    assert not fits_type("What was the cost of the new roof?", "The roof was replaced in 2019.")
    assert fits_type("How much revenue did the segment bring?", "Services | Three Months Ended: 21,213")
    assert fits_type("Why was the budget cut?", "The council cut it after the flood.")


def test_a_year_counts_as_a_date_next_to_chinese_characters():
    """ "1958年" is a year: an English "when" question over a Chinese sentence may quote it."""
    assert fits_type("In which year was the library founded?", "青石市图书馆始建于1958年。")
    assert fits_type("When was the kiln rebuilt?", "It was rebuilt in 2019 by the guild.")
    assert not fits_type("When was the kiln rebuilt?", "The kiln holds 20234 bricks.")


def test_a_street_address_is_asked_for_in_chinese_too():
    question = "那个警察站的街道地址是什么？"
    assert not fits_type(question, "The station is in Scarborough, a suburb of Toronto.")
    assert fits_type(question, "The station operates from 2347 Kennedy Road in Scarborough.")
    assert fits_type("图书馆的地址是什么？", "主馆位于人民路十二号。")
