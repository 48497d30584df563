"""Exact locations: citations name the lines of the file on disk (blank-line runs, CRLF), the
page of a PDF; `dossier eval` checks each citation against the original file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine import Engine
from bot.evaluate import LocationCheck
from bot.types import Citation
from dossier_common.settings import Settings
from ingest.loaders.text import normalize_text, original_line_numbers
from ingest.pipeline import ingest_paths
from tests.test_loaders import make_pdf

# Line numbers as an editor shows them: blank-line runs (which the index collapses), CRLF
# line ends, a form feed and leading blank lines.
LINES = [
    "",  # 1
    "",  # 2
    "Harbour Records",  # 3
    "",  # 4
    "",  # 5
    "",  # 6
    "The harbour office opened in 1887 and kept its ledgers in the tower.",  # 7
    "",  # 8
    "",  # 9
    "",  # 10
    "",  # 11
    "The lighthouse keeper logged the weather, the ships and the lamp oil every day.",  # 12
    "A page break\fin the middle of a line.",  # 13
    "",  # 14
    "",  # 15
    "The keeper's cat, Admiral Whiskers, slept in the lamp room",  # 16
    "every winter night, curled beside the great brass lens.",  # 17
    "",  # 18
]


def _write(path: Path, lines: list[str], end: str = "\r\n") -> Path:
    path.write_bytes(end.join(lines).encode("utf-8"))
    return path


def test_normalised_lines_map_to_the_lines_on_disk():
    raw = "\r\n".join(LINES)
    text = normalize_text(raw)
    numbers = original_line_numbers(raw, text)
    assert numbers is not None
    lines = text.split("\n")
    assert len(numbers) == len(lines)
    where = {line: n for line, n in zip(lines, numbers, strict=True) if line}
    assert where["Harbour Records"] == 3
    assert where["The harbour office opened in 1887 and kept its ledgers in the tower."] == 7
    assert where["A page break"] == 13 and where["in the middle of a line."] == 13
    assert where["every winter night, curled beside the great brass lens."] == 17
    # Old Mac line ends count as lines too.
    assert original_line_numbers("a\r\rb", normalize_text("a\r\rb")) == [1, 2, 3]


@pytest.fixture(scope="module")
def harbour(tmp_path_factory: pytest.TempPathFactory, embedder):
    root = tmp_path_factory.mktemp("harbour")
    folder = root / "docs"
    folder.mkdir()
    _write(folder / "harbour.txt", LINES)
    settings = Settings(home=root / "home", _env_file=None)
    ingest_paths([folder], settings, embedder)
    engine = Engine(settings, embedder=embedder)
    yield engine, folder
    engine.close()


def test_citations_name_the_lines_of_the_file_on_disk(harbour):
    engine, _folder = harbour
    answer = engine.ask("Where did Admiral Whiskers sleep?")
    assert not answer.abstained and answer.citations
    cited = answer.citations[0]
    assert "Admiral Whiskers" in cited.quote
    assert cited.location == "§ Harbour Records, lines 16-17"
    answer = engine.ask("When did the harbour office open?")
    assert answer.citations[0].location == "§ Harbour Records, line 7"
    check = LocationCheck(engine.source_paths())
    assert all(check(c) for c in answer.citations)
    # Passages too: the retrieved passage's lines are the file's.
    passage = engine.retrieve("Admiral Whiskers lamp room", 1)[0]
    assert passage.location.endswith("-17")


def test_lines_of_the_indexed_text_when_the_file_changed(harbour):
    engine, folder = harbour
    path = folder / "harbour.txt"
    original = path.read_bytes()
    try:
        path.write_bytes(b"\n\n\n" + original)  # not the file indexed any more
        answer = engine.ask("When did the harbour office open?")
        assert answer.citations[0].location.endswith(", line 3")  # counted in the indexed text, as before
    finally:
        path.write_bytes(original)


def test_a_citation_at_the_wrong_lines_is_counted_wrong(tmp_path):
    path = _write(tmp_path / "harbour.txt", LINES)
    check = LocationCheck({"harbour.txt": path})
    quote = "The keeper's cat, Admiral Whiskers, slept in the lamp room every winter night, curled beside the great brass lens."
    assert check(Citation(1, "harbour.txt", "lines 16-17", quote))
    assert not check(Citation(1, "harbour.txt", "line 16", quote))  # half the sentence
    assert not check(Citation(1, "harbour.txt", "lines 14-15", quote))  # where the index counted it
    assert not check(Citation(1, "harbour.txt", "", quote))  # no location at all
    assert not check(Citation(1, "other.txt", "line 1", quote))  # no such file
    assert check(Citation(1, "harbour.txt", "§ Harbour Records, line 7", "harbour office opened in 1887"))

    pdf = tmp_path / "two.pdf"
    pdf.write_bytes(make_pdf([["The first page speaks of gulls."], ["The second page speaks of terns."]]))
    check = LocationCheck({"two.pdf": pdf})
    assert check(Citation(1, "two.pdf", "p. 2, lines 3-3", "The second page speaks of terns."))
    assert not check(Citation(1, "two.pdf", "p. 1", "The second page speaks of terns."))
    assert not check(Citation(1, "two.pdf", "p. 3", "The second page speaks of terns."))


def test_the_quote_shown_is_centred_on_the_sentences_the_answer_uses():
    from bot.chat_session import at_quote
    from bot.discord_render import sources_embeds
    from bot.excerpts import excerpt
    from bot.quotes import ScoredSentence, render
    from bot.render import format_answer
    from bot.types import Answer, Passage

    filler = " ".join(f"The tide table for day {i} was copied into the ledger by hand." for i in range(30))
    first = "The harbour office opened in 1887."
    last = "Admiral Whiskers slept in the lamp room every winter night."
    text = f"{first} {filler} {last} The ledger ends there."
    passage = Passage(
        id="p1",
        source="harbour.txt",
        text=text,
        location="lines 1-40",
        score=1.0,
        end=len(text),
        chunk_ids=("p1",),
    )
    a = text.index(last)
    # One sentence near the end of a long passage: quoted alone, and a long text cut around it.
    draft = render([ScoredSentence(0, a, a + len(last), last, 1.0)], [passage], bullets=False)
    assert draft.citations[0].quote == last
    shown = excerpt(text, 120, [(a, a + len(last))])
    assert last in shown and shown.startswith("…") and len(shown) <= 120
    # Two sentences of one passage: one citation whose quote spans both (with the filler in
    # between); every front end shows both sentences, not the quote's first 300 characters.
    chosen = [ScoredSentence(0, 0, len(first), first, 1.0), ScoredSentence(0, a, a + len(last), last, 0.9)]
    draft = render(chosen, [passage], bullets=False)
    (citation,) = draft.citations
    assert len(citation.quote) > 1000 and citation.quote.endswith(last)
    answer = Answer("q", draft.text, draft.citations, False, (passage,))
    cli = format_answer(answer)
    assert first in cli and last in cli and "The tide table for day 12" not in cli
    (embed,) = sources_embeds(answer.citations)
    assert last in embed.fields[0].value and first in embed.fields[0].value
    # /open shows the quote in its context, under the citation's location.
    opened = at_quote(answer, 1, passage)
    assert opened.text == citation.quote and opened.location == citation.location


def test_a_source_from_a_url_links_to_the_quote():
    from bot.discord_render import sources_embeds
    from bot.render import format_answer
    from bot.types import Answer
    from dossier_common.urls import quote_link

    url = "https://example.com/news/lanterns.html"
    quote = "The lantern fair of Quellmoor opens on the first Friday of October, rain or shine."
    link = quote_link(url + "#top", quote)
    assert link == url + "#:~:text=The%20lantern%20fair%20of%20Quellmoor%20opens%20on%20the"
    assert quote_link(url, "A-B, C&D") == url + "#:~:text=A%2DB%2C%20C%26D"
    cited = Citation(1, url, "§ Fairs", quote)
    assert cited.link == link and cited.to_dict()["link"] == link
    plain = Citation(1, "notes.txt", "line 3", quote)
    assert plain.link == "" and "link" not in plain.to_dict()  # files: the ask --json keys as before
    answer = Answer("q", f"{quote} [1]", (cited,), False, ())
    assert f"      {link}" in format_answer(answer).splitlines()
    (embed,) = sources_embeds(answer.citations)
    assert f"(<{link}>)" in embed.fields[0].value
