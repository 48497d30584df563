"""`fetch_url` against a real HTTP server on 127.0.0.1: saved files, limits, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.fetch import FetchError, fetch_url, file_name_for, source_url
from ingest.loaders import load_file
from tests.test_loaders import make_pdf

ARTICLE = (
    b"<html><head><title>Lanterns of Quellmoor</title></head><body>"
    b"<h1>Lanterns of Quellmoor</h1><p>The lantern fair of Quellmoor opens every October.</p>"
    b"</body></html>"
)
PDF = make_pdf([["The copper mines of Tarnby closed in 1911."]], title="Tarnby mines")
LIMIT = 4096

# path -> (status, content type, body, send Content-Length)
ROUTES: dict[str, tuple[int, str, bytes, bool]] = {
    "/news/lanterns.html": (200, "text/html; charset=utf-8", ARTICLE, True),
    "/papers/tarnby.pdf": (200, "application/pdf", PDF, True),
    "/download?id=7": (200, "application/octet-stream", PDF, True),
    "/notes.txt": (200, "text/plain", b"Plain notes about kettles.\n", True),
    "/big.txt": (200, "text/plain", b"x" * (LIMIT + 1), True),
    "/big-unannounced.txt": (200, "text/plain", b"y" * (LIMIT * 3), False),
    "/logo.png": (200, "image/png", b"\x89PNG\r\n\x1a\nnot really", True),
    "/blob": (200, "application/octet-stream", b"\x00\x01 not a pdf", True),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/old-address":
            self.send_response(302)
            self.send_header("Location", "/news/lanterns.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, ctype, body, announce = ROUTES.get(self.path, (404, "text/html", b"<h1>Not found</h1>", True))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if announce:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")  # the body ends when the connection does
        self.end_headers()
        self.wfile.write(body)
        if not announce:
            self.close_connection = True

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fetch(url: str, dest: Path) -> Path:
    return fetch_url(url, dest, max_bytes=LIMIT, timeout=10)


def test_html_page_is_saved_with_its_url(server: str, tmp_path: Path) -> None:
    url = f"{server}/news/lanterns.html"
    path = _fetch(url, tmp_path / "web")
    assert path.parent == tmp_path / "web"
    assert path.name == file_name_for(url, ".html") and path.suffix == ".html"
    assert path.name.startswith("127.0.0.1-") and "news_lanterns" in path.name
    assert path.read_bytes() == ARTICLE
    assert source_url(path) == url
    doc = load_file(path, path.parent)
    assert doc.title == "Lanterns of Quellmoor"
    assert "opens every October" in doc.text
    # Nothing half-written or hidden is left behind; the sidecar's type is not a document.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".url"]


def test_fetching_again_replaces_the_same_file(server: str, tmp_path: Path) -> None:
    first = _fetch(f"{server}/news/lanterns.html", tmp_path)
    second = _fetch(f"{server}/news/lanterns.html", tmp_path)
    assert first == second
    assert len(list(tmp_path.iterdir())) == 2


def test_redirect_is_followed_and_named_after_the_given_url(server: str, tmp_path: Path) -> None:
    url = f"{server}/old-address"
    path = _fetch(url, tmp_path)
    assert path.read_bytes() == ARTICLE
    assert "old-address" in path.name
    assert source_url(path) == url


def test_pdf_is_fetched(server: str, tmp_path: Path) -> None:
    path = _fetch(f"{server}/papers/tarnby.pdf", tmp_path)
    assert path.suffix == ".pdf" and path.name.endswith("papers_tarnby.pdf")
    doc = load_file(path, tmp_path)
    assert "copper mines of Tarnby" in doc.text


def test_pdf_sent_as_generic_binary_is_recognised(server: str, tmp_path: Path) -> None:
    path = _fetch(f"{server}/download?id=7", tmp_path)
    assert path.suffix == ".pdf"
    assert path.read_bytes() == PDF


def test_plain_text_is_fetched(server: str, tmp_path: Path) -> None:
    path = _fetch(f"{server}/notes.txt", tmp_path)
    assert path.name.endswith("notes.txt")
    assert path.read_text() == "Plain notes about kettles.\n"


@pytest.mark.parametrize("route", ["/big.txt", "/big-unannounced.txt"])
def test_too_large_is_refused(server: str, tmp_path: Path, route: str) -> None:
    with pytest.raises(FetchError, match="limit"):
        _fetch(f"{server}{route}", tmp_path)
    assert list(tmp_path.iterdir()) == []  # the partial download is removed


@pytest.mark.parametrize(
    ("route", "shown"), [("/logo.png", "image/png"), ("/blob", "application/octet-stream")]
)
def test_wrong_content_type_is_refused(server: str, tmp_path: Path, route: str, shown: str) -> None:
    with pytest.raises(FetchError, match=f"is {shown}, not a document Dossier reads"):
        _fetch(f"{server}{route}", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_not_found_is_a_clear_error(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"answered 404 Not Found"):
        _fetch(f"{server}/gone.html", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_host_and_non_http_urls(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="Could not fetch"):
        # Port 9 (discard) is closed on a test machine: the connection is refused at once.
        fetch_url("http://127.0.0.1:9/x.html", tmp_path, max_bytes=LIMIT, timeout=5)
    with pytest.raises(FetchError, match="Not a web address"):
        fetch_url("ftp://example.com/file.pdf", tmp_path, max_bytes=LIMIT, timeout=5)


def test_file_names_are_safe_and_stable() -> None:
    assert file_name_for("https://example.com/", ".html") == "example.com.html"
    assert file_name_for("https://example.com/../../etc/passwd", ".txt") == "example.com_etc_passwd.txt"
    assert file_name_for("https://example.com/.hidden", ".txt") == "example.com_hidden.txt"
    with_query = file_name_for("https://example.com/a?page=2", ".html")
    assert with_query != file_name_for("https://example.com/a?page=3", ".html")
    assert with_query.startswith("example.com_a-")
    long_name = file_name_for("https://example.com/" + "a" * 500, ".html")
    assert len(long_name) < 150 and long_name.endswith(".html")


def test_dossier_ingest_url_then_answer_cites_the_url(server: str, tmp_path: Path) -> None:
    """`dossier ingest URL` end to end: fetched, ingested with the URL as its source, answerable."""
    env = {
        **os.environ,
        "DOSSIER_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    url = f"{server}/news/lanterns.html"
    cli = [sys.executable, "-c", "from bot.cli import main; main()"]
    first = subprocess.run(
        [*cli, "ingest", url, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 1
    again = subprocess.run(
        [*cli, "ingest", url, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert json.loads(again.stdout)["added"] == 0 and json.loads(again.stdout)["unchanged"] == 1
    assert "skipped" not in again.stderr  # the .url sidecar is not reported as a stray file
    ask = subprocess.run(
        [*cli, "ask", "When does the lantern fair of Quellmoor open?", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["citations"] and answer["citations"][0]["source"] == url
    missing = subprocess.run([*cli, "ingest", f"{server}/nope.html"], env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "404" in missing.stderr and "Traceback" not in missing.stderr
