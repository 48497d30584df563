"""Loaders: every format yields normalised text with sections that tile it, and bad input yields LoadError."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from dossier_common.errors import DossierError
from ingest.loaders import (
    BYTES_PER_MB,
    SUPPORTED_SUFFIXES,
    LoadedDocument,
    LoadError,
    discover,
    file_hash,
    fold_for_match,
    load_file,
    normalize_text,
)

CORPUS_TXT = Path("/work/shared/corpus/overseas-police-stations-canada.txt")
SEC_DOCS = Path("/work/shared/datasets/sec-10q/docs")
SEC_PDF = SEC_DOCS / "2022 Q3 AAPL.pdf"

needs_corpus = pytest.mark.skipif(not CORPUS_TXT.exists(), reason="shared corpus not available")
needs_sec = pytest.mark.skipif(not SEC_PDF.exists(), reason="SEC 10-Q PDFs not available")


def assert_tiles(doc: LoadedDocument) -> None:
    """Sections cover the text in order, quote it exactly, and leave only whitespace between them."""
    assert doc.text
    assert doc.sections
    assert doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)
    previous_end = 0
    for section in doc.sections:
        assert section.text
        assert doc.text[section.start : section.end] == section.text
        assert section.start >= previous_end
        assert doc.text[previous_end : section.start].strip() == ""
        previous_end = section.end


def load(path: Path, **kwargs: int) -> LoadedDocument:
    doc = load_file(path, path.parent, **kwargs)
    assert_tiles(doc)
    return doc


def make_pdf(pages: list[list[str]], title: str | None = None, page_extra: str = "") -> bytes:
    """A minimal valid PDF with one Helvetica text line per list entry (reportlab is not installed)."""

    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        ops = ["BT /F1 12 Tf 14 TL 72 720 Td", *(f"({escape(line)}) Tj T*" for line in lines), "ET"]
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R {page_extra}>>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info = ""
    if title is not None:
        objects.append(f"<< /Title ({escape(title)}) >>".encode("latin-1"))
        info = f" /Info {len(objects)} 0 R"

    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str, owner_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def reason_of(path: Path, **kwargs: int) -> str:
    with pytest.raises(LoadError) as info:
        load_file(path, path.parent, **kwargs)
    assert str(info.value) == info.value.reason
    return info.value.reason


# -- normalisation ------------------------------------------------------------------------------


def test_normalize_text_cleans_whitespace_and_keeps_curly_quotes() -> None:
    raw = "\ufeff  “Quoted”\tand\u00a0it’s \r\nline two   \r\n\n\n\n\nafter\x07 gap\x00\ncafe\u0301  "
    assert normalize_text(raw) == "“Quoted” and it’s\nline two\n\nafter gap\ncafé"


def test_normalize_text_is_idempotent() -> None:
    once = normalize_text("a\t\tb \n\n\n\n c\u2028d\fe")
    assert normalize_text(once) == once
    assert "\n\n\n" not in once


def test_fold_for_match_folds_quotes_dashes_case_and_space() -> None:
    assert fold_for_match("  “110 Overseas” – China’s\n\tPOLICING —  ﬁne ") == (
        '"110 overseas" - china\'s policing - fine'
    )
    assert fold_for_match("‘Darling’") == fold_for_match("'darling'")


# -- formats -------------------------------------------------------------------------------------


@needs_corpus
def test_corpus_txt_headings_title_and_hash() -> None:
    doc = load_file(CORPUS_TXT, CORPUS_TXT.parent)
    assert_tiles(doc)
    raw = CORPUS_TXT.read_bytes()
    assert doc.source == CORPUS_TXT.name
    assert doc.content_hash == hashlib.sha256(raw).hexdigest() == file_hash(CORPUS_TXT)
    assert doc.title.startswith("There are likely three or more unofficial Chinese police stations")
    headings = [section.heading for section in doc.sections]
    assert "Other places" in headings
    assert "“Repression beyond borders”" in headings
    # A quoted sentence ending in a full stop is body text, not a heading.
    assert not any(heading.startswith("“So, at least") for heading in headings)
    # Curly quotes survive loading so quotes can be matched verbatim.
    assert "China’s" in doc.text
    other = next(s for s in doc.sections if s.heading == "Other places")
    assert other.text.startswith("Other places\n\nChinese officials say")


def test_txt_heading_rule(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(
        "Report title\n\nIntro paragraph.\n\nBackground\n\nSome text here.\n"
        "It continues.\n\nNot a heading.\n\nA line followed\nby text\n\nFindings\n\nLast part.\n",
        encoding="utf-8",
    )
    doc = load(path)
    assert doc.title == "Report title"
    assert [s.heading for s in doc.sections] == ["Report title", "Background", "Findings"]
    assert doc.sections[1].text.endswith("by text")


def test_txt_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffFirst line\r\n\r\nSecond\tline\r\n".encode())
    doc = load(path)
    assert doc.text == "First line\n\nSecond line"
    assert doc.title == "First line"


def test_utf16_txt_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "notepad.txt"
    path.write_bytes("Café notes\r\n\r\nBody.".encode("utf-16"))
    assert load(path).text == "Café notes\n\nBody."


def test_markdown_headings_code_fences_and_setext(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "Preface text with **bold**.\n\n"
        "# Guide\n\nIntro.\n\n"
        "## Install ##\n\n```sh\n# not a heading\npip install x\n```\n\n"
        "Usage\n-----\n\nRun it.\n\n#hashtag is not a heading\n",
        encoding="utf-8",
    )
    doc = load(path)
    assert doc.title == "Guide"
    assert [s.heading for s in doc.sections] == ["", "Guide", "Install", "Usage"]
    assert "**bold**" in doc.text
    assert "# not a heading" in doc.sections[2].text
    assert doc.sections[3].text.endswith("#hashtag is not a heading")


def test_html_drops_noise_and_splits_on_headings(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    html = """<!doctype html><html><head><title>The  Page</title>
    <style>body { color: red }</style><script>var tracking = 1;</script></head>
    <body><header>Site banner</header><nav><a href="/">Home</a> | <a>Menu</a></nav>
    <noscript>Enable JS</noscript><!-- a comment -->
    <article><header><h1>Main headline</h1></header>
    <p>First <b>bold</b>
       paragraph&nbsp;here.</p>
    <h2>Details</h2>
    <ul><li>one item</li><li>two item</li></ul>
    <table><tr><th>Name</th><th>Value</th></tr><tr><td>alpha</td><td>1</td></tr></table>
    <p>line one<br>line two</p><p hidden>secret</p>
    </article><footer>Copyright notice</footer></body></html>"""
    path.write_text(html, encoding="utf-8")
    doc = load(path)
    assert doc.title == "The Page"
    for noise in ("Site banner", "Home", "tracking", "color", "Enable JS", "Copyright", "comment", "secret"):
        assert noise not in doc.text
    assert "First bold paragraph here." in doc.text
    assert "one item" in doc.text
    # The table kept as a table: its row under its headers, the line above it as its caption.
    assert "two item\nName: alpha | Value: 1" in doc.text
    assert doc.notes.tables == 1
    assert "line one\nline two" in doc.text
    assert [s.heading for s in doc.sections] == ["Main headline", "Details", "Details"]
    assert doc.sections[1].text.startswith("Details\n\none item")


def test_html_declared_charset(tmp_path: Path) -> None:
    path = tmp_path / "old.htm"
    path.write_bytes(
        '<html><head><meta charset="iso-8859-1"></head><body><p>café</p></body></html>'.encode("latin-1")
    )
    doc = load(path)
    assert doc.text == "café"
    assert doc.title == "café"


def test_docx_headings_and_table(tmp_path: Path) -> None:
    path = tmp_path / "memo.docx"
    document = docx.Document()
    document.add_paragraph("Opening remark.")
    document.add_heading("Budget", level=1)
    document.add_paragraph("Spending rose.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Year", "Amount"), ("2022", "10")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Outlook", level=2)
    document.add_paragraph("Stable.")
    document.save(path)

    doc = load(path)
    assert doc.title == "Budget"
    # The table is a section of its own under the same heading, the line above it its caption.
    assert [s.heading for s in doc.sections] == ["", "Budget", "Budget", "Outlook"]
    assert doc.sections[2].text == "Spending rose.\nYear: 2022 | Amount: 10"
    assert doc.notes.tables == 1
    assert doc.sections[3].text == "Outlook\n\nStable."

    document.core_properties.title = "Quarterly memo"
    document.save(path)
    assert load(path).title == "Quarterly memo"


def test_small_pdf_pages_title_and_hyphenation(tmp_path: Path) -> None:
    path = tmp_path / "two.pdf"
    path.write_bytes(
        make_pdf(
            [
                [
                    "Annual summary",
                    "This is an exam-",
                    "ple of text from Apple-",
                    "Inc filings, extra-",
                    "ordi-",
                    "nary.",
                ],
                ["Second page body."],
            ],
            title="Summary of the year",
        )
    )
    doc = load(path)
    assert doc.title == "Summary of the year"
    assert [s.page for s in doc.sections] == [1, 2]
    assert "an example of text" in doc.text
    # PDFium joins every word broken at a line end, capitalised halves included.
    assert "Apple-\nInc" in doc.text or "AppleInc" in doc.text
    assert "extraordinary." in doc.text
    assert doc.sections[1].text == "Second page body."
    assert doc.text == doc.sections[0].text + "\n\n" + doc.sections[1].text


def test_pdf_title_falls_back_to_first_line(tmp_path: Path) -> None:
    path = tmp_path / "untitled.pdf"
    path.write_bytes(make_pdf([["First line of text", "more"]], title="0000320193-22-000070"))
    assert load(path).title == "First line of text"


@needs_sec
def test_real_sec_pdf_pages() -> None:
    doc = load_file(SEC_PDF, SEC_DOCS)
    assert_tiles(doc)
    assert doc.source == SEC_PDF.name
    pages = [s.page for s in doc.sections]
    assert pages[0] == 1
    assert pages == sorted(pages)
    assert len(set(pages)) == len(PdfReader(SEC_PDF).pages)
    assert "QUARTERLY REPORT" in doc.sections[0].text
    assert len(doc.text) > 10_000


def test_pdf_with_only_an_owner_password_opens(tmp_path: Path) -> None:
    path = tmp_path / "restricted.pdf"
    path.write_bytes(encrypt_pdf(make_pdf([["Readable text"]]), user_password="", owner_password="owner"))
    assert load(path).text == "Readable text"


def test_pdf_with_a_huge_array_still_loads(tmp_path: Path) -> None:
    # pypdf's default guard rejects arrays over 100,000 elements; real 10-Q filings exceed it.
    path = tmp_path / "huge.pdf"
    path.write_bytes(make_pdf([["Body text"]], page_extra="/PieceInfo [" + "0 " * 150_000 + "] "))
    assert load(path).text == "Body text"


# -- bad input ----------------------------------------------------------------------------------


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(encrypt_pdf(make_pdf([["Top secret"]]), user_password="pw", owner_password="pw"))
    assert reason_of(path) == "PDF is encrypted"


def test_corrupt_pdf_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.pdf"
    path.write_bytes(random.Random(1).randbytes(4096))
    assert reason_of(path).startswith("corrupt PDF: ")


@needs_sec
def test_truncated_real_pdf(tmp_path: Path) -> None:
    path = tmp_path / "truncated.pdf"
    data = SEC_PDF.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert reason_of(path).startswith("corrupt PDF: ")


def test_pdf_without_text(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[], []]))
    assert reason_of(path) == "no extractable text (scanned PDF?)"


def test_corrupt_docx(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 not really a zip archive")
    assert reason_of(path).startswith("corrupt DOCX: ")


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.pdf", "empty.docx", "empty.html"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert reason_of(path) == "empty file"


def test_whitespace_only_and_markup_only_files_are_empty(tmp_path: Path) -> None:
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n \u00a0\n", encoding="utf-8")
    assert reason_of(blank) == "empty file"
    shell = tmp_path / "shell.html"
    shell.write_text("<html><head><script>x()</script></head><body><nav>menu</nav></body></html>")
    assert reason_of(shell) == "empty file"


def test_binary_file_with_txt_suffix(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert reason_of(path) == "binary file, not text"


def test_latin1_txt_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("Le café est fermé.".encode("latin-1"))
    assert reason_of(path) == "not valid UTF-8 text"


def test_file_vanished_between_discover_and_load(tmp_path: Path) -> None:
    path = tmp_path / "gone.md"
    path.write_text("# Soon gone\n", encoding="utf-8")
    found, _ = discover([tmp_path])
    path.unlink()
    file, root = found[0]
    with pytest.raises(LoadError, match="file vanished while reading"):
        load_file(file, root)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "private.txt"
    path.write_text("secret", encoding="utf-8")

    # Running as root ignores file modes, so simulate the refusal at the open call.
    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    assert reason_of(path) == "permission denied"


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 120_000, encoding="utf-8")
    assert reason_of(path, max_bytes=BYTES_PER_MB // 2) == "larger than the 0.5 MB limit"
    assert load(path, max_bytes=BYTES_PER_MB).text.startswith("word word")


def test_unsupported_suffix_in_load_file(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"data")
    assert reason_of(path) == "unsupported type .xlsx"


def test_load_error_is_a_dossier_error() -> None:
    err = LoadError("empty file")
    assert isinstance(err, DossierError)
    assert str(err) == err.reason == "empty file"


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
def test_garbage_never_raises_anything_but_load_error(tmp_path: Path, suffix: str) -> None:
    rng = random.Random(suffix)
    for i in range(5):
        path = tmp_path / f"junk{i}{suffix}"
        path.write_bytes(rng.randbytes(rng.randint(1, 3000)))
        with contextlib.suppress(LoadError):
            assert_tiles(load_file(path, tmp_path))


# -- discovery ----------------------------------------------------------------------------------


def test_discover_walks_skips_and_sorts(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".git").mkdir()
    for name in ["b.md", "a.txt", "sub/c.PDF", "sub/d.html", ".hidden.txt", "e.xlsx", "README", ".git/x.txt"]:
        (docs / name).write_text("x", encoding="utf-8")
    (docs / "~$memo.docx").write_bytes(b"lock")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("outside", encoding="utf-8")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    single = tmp_path / "single.md"
    single.write_text("# one", encoding="utf-8")

    found, skipped = discover([docs, single, docs / "a.txt", tmp_path / "missing.txt"])

    assert found == [
        (docs / "a.txt", docs),
        (docs / "b.md", docs),
        (docs / "sub" / "c.PDF", docs),
        (docs / "sub" / "d.html", docs),
        (single, tmp_path),
    ]
    reasons = {item.path.relative_to(tmp_path).as_posix(): item.reason for item in skipped}
    assert reasons == {
        "docs/.git": "hidden directory",
        "docs/.hidden.txt": "hidden file",
        "docs/e.xlsx": "unsupported type .xlsx",
        "docs/README": "unsupported type (no extension)",
        "docs/~$memo.docx": "temporary office file",
        "docs/linked": "symlinked directory not followed",
        "missing.txt": "does not exist",
    }


def test_source_is_relative_posix_path(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "note.md").write_text("# Note\n\nBody.", encoding="utf-8")
    [(file, root)], _ = discover([tmp_path])
    doc = load_file(file, root)
    assert doc.source == "a/b/note.md"
    assert doc.path == file


def test_discover_explicit_hidden_file_is_skipped(tmp_path: Path) -> None:
    # Editors leave lock files such as ".#draft.md"; a watcher passing them one by one must not load them.
    lock = tmp_path / ".#draft.md"
    lock.write_text("x", encoding="utf-8")
    found, skipped = discover([lock])
    assert found == []
    assert [s.reason for s in skipped] == ["hidden file"]


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_discover_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    found, skipped = discover([tmp_path])
    assert found == []
    assert [s.reason for s in skipped] == ["broken symbolic link"]
