"""`fetch_url` against a real HTTP server on 127.0.0.1: saved files, limits, refusals."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from ingest.fetch import (
    AddressRefused,
    FetchError,
    display_url,
    fetch_url,
    file_name_for,
    resolve_public,
    source_url,
)
from ingest.loaders import load_file
from tests.helpers_proc import drip
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
    # NUL-free binary that a misconfigured server labels as a web page.
    "/fake.html": (200, "text/html", bytes(range(1, 256)) * 8, True),
}
# Paths the handler was asked for, so tests can tell a refused hop was never requested.
requested_paths: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        requested_paths.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", unquote(self.path.partition("=")[2]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/drip.html":
            self._drip()
            return
        if self.path == "/old-address":
            self.send_response(302)
            self.send_header("Location", "/news/lanterns.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route = self.path if self.path in ROUTES else self.path.partition("?")[0]
        status, ctype, body, announce = ROUTES.get(route, (404, "text/html", b"<h1>Not found</h1>", True))
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

    def _drip(self) -> None:
        # One byte every 0.2 s: never slow enough to trip a per-read timeout.
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "100")
        self.end_headers()
        drip(self.wfile)

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
    # The test server is on loopback, which only an allowed host may reach.
    return fetch_url(url, dest, max_bytes=LIMIT, timeout=10, allow_hosts=["127.0.0.1"])


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
        fetch_url(
            "http://127.0.0.1:9/x.html", tmp_path, max_bytes=LIMIT, timeout=5, allow_hosts=["127.0.0.1"]
        )
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


def test_dossier_ingest_url_then_answer_cites_the_url(server: str, tmp_path: Path, dossier_cli) -> None:
    """`dossier ingest URL` end to end: fetched, ingested with the URL as its source, answerable."""
    home = tmp_path / "home"
    env = {"DOSSIER_FETCH_ALLOW_HOSTS": "127.0.0.1"}
    url = f"{server}/news/lanterns.html"
    first = dossier_cli("ingest", url, "--json", home=home, **env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 1
    again = dossier_cli("ingest", url, "--json", home=home, **env)
    assert json.loads(again.stdout)["added"] == 0 and json.loads(again.stdout)["unchanged"] == 1
    assert "skipped" not in again.stderr  # the .url sidecar is not reported as a stray file
    ask = dossier_cli("ask", "When does the lantern fair of Quellmoor open?", "--json", home=home, **env)
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["citations"] and answer["citations"][0]["source"] == url
    # The citation links back to the page, at the quote (a text fragment on its first words).
    assert answer["citations"][0]["link"].startswith(url + "#:~:text=")
    missing = dossier_cli("ingest", f"{server}/nope.html", home=home, **env)
    assert missing.returncode != 0 and "404" in missing.stderr and "Traceback" not in missing.stderr


# -- SSRF: addresses that are not public are refused on every hop ---------------------------


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if anything connects to a non-loopback address; records the addresses."""
    real = socket.create_connection
    seen: list[str] = []

    def guarded(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        host = address[0]
        seen.append(host)
        assert ipaddress.ip_address(host).is_loopback, f"a test tried to connect to {host}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return seen


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("fd00:ec2::254", "private"),
        ("100.100.100.200", "not a public address"),
        ("0.0.0.0", "private"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_addresses_are_refused_after_resolution(host: str, kind: str) -> None:
    with pytest.raises(AddressRefused, match=kind) as caught:
        resolve_public(host, 80)
    message = str(caught.value)
    assert "\n" not in message and "DOSSIER_FETCH_ALLOW_HOSTS" in message


def test_public_addresses_pass_and_allowed_hosts_skip_the_check() -> None:
    # Address literals resolve without DNS or traffic.
    assert resolve_public("93.184.215.14", 443) == ["93.184.215.14"]
    assert resolve_public("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443) == [
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    ]
    assert resolve_public("127.0.0.1", 80, ["127.0.0.1"]) == ["127.0.0.1"]
    assert resolve_public("LocalHost.", 80, ["localhost"]) == ["LocalHost."]


def test_loopback_is_refused_unless_allowed(server: str, tmp_path: Path, loopback_only: list[str]) -> None:
    requested_paths.clear()
    with pytest.raises(FetchError, match=r"127\.0\.0\.1 is 127\.0\.0\.1, a loopback address"):
        fetch_url(f"{server}/news/lanterns.html", tmp_path, max_bytes=LIMIT, timeout=5)
    assert loopback_only == [] and requested_paths == []  # refused before connecting
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/news/lanterns.html",  # loopback under a name that is not allowed
        "http://[::1]:{port}/news/lanterns.html",
        "http://10.0.0.7/admin",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_redirect_to_an_internal_address_is_refused(
    server: str, tmp_path: Path, loopback_only: list[str], target: str
) -> None:
    port = server.rsplit(":", 1)[1]
    location = target.format(port=port)
    requested_paths.clear()
    with pytest.raises(FetchError) as caught:
        _fetch(f"{server}/redirect?to={quote(location, safe='')}", tmp_path)
    message = str(caught.value)
    assert "not public are refused" in message and "\n" not in message
    # The first hop was served; the internal one was never connected to.
    assert requested_paths == [f"/redirect?to={quote(location, safe='')}"]
    assert loopback_only == ["127.0.0.1"]
    assert list(tmp_path.iterdir()) == []


# -- a total deadline, and what is kept -----------------------------------------------------


def test_slow_server_cannot_hold_the_download_past_its_deadline(server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"not done within 1 s"):
        fetch_url(f"{server}/drip.html", tmp_path, max_bytes=LIMIT, timeout=1, allow_hosts=["127.0.0.1"])
    assert time.monotonic() - started < 3  # each read was quick; only the total can stop it
    assert list(tmp_path.iterdir()) == []  # the partial download is removed


def test_binary_labelled_as_html_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="labelled text/html but its content is binary"):
        _fetch(f"{server}/fake.html", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_stale_partial_downloads_are_removed(server: str, tmp_path: Path) -> None:
    stale = tmp_path / ".fetch-0123456789abcdef.part"
    fresh = tmp_path / ".fetch-fedcba9876543210.part"  # perhaps another fetch's, still running
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    _fetch(f"{server}/notes.txt", tmp_path)
    assert not stale.exists() and fresh.exists()


# -- credentials in URLs are never stored or shown ------------------------------------------


def test_credentials_are_stripped_from_the_stored_source(server: str, tmp_path: Path) -> None:
    host = server.removeprefix("http://")
    url = f"http://alice:S3cret@{host}/notes.txt?lang=en&token=abc123&X-Amz-Signature=f00&api_key=k"
    path = _fetch(url, tmp_path)
    shown = f"http://{host}/notes.txt?lang=en"
    assert source_url(path) == shown
    sidecar = path.with_name(path.name + ".url").read_text()
    assert "S3cret" not in sidecar and "abc123" not in sidecar and "f00" not in sidecar
    assert "S3cret" not in path.name
    assert (
        display_url("https://example.com/search?keyword=tea&page=2")
        == "https://example.com/search?keyword=tea&page=2"
    )
    # A sidecar written before this fix is cleaned when read.
    old = tmp_path / "old.html"
    old.write_text("<p>x</p>")
    (tmp_path / "old.html.url").write_text(f"[InternetShortcut]\nURL={url}\n")
    assert source_url(old) == shown


def test_chroma_url_password_is_not_shown() -> None:
    from dossier_common.settings import Settings
    from index.store import describe_store

    settings = Settings(chroma_url="http://admin:pw@127.0.0.1:9", _env_file=None)
    assert describe_store(settings) == "http://127.0.0.1:9"


def test_fetch_to_documents_uses_the_allow_setting(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dossier_common.settings import Settings
    from ingest.fetch import fetch_to_documents

    url = f"{server}/notes.txt"
    refused = Settings(home=tmp_path / "a", _env_file=None)
    with pytest.raises(FetchError, match="loopback address"):
        fetch_to_documents(url, refused)
    monkeypatch.setenv("DOSSIER_FETCH_ALLOW_HOSTS", "wiki.internal, 127.0.0.1")
    allowed = Settings(home=tmp_path / "b", _env_file=None)
    assert allowed.fetch_allow_hosts == ["wiki.internal", "127.0.0.1"]
    assert fetch_to_documents(url, allowed).parent == tmp_path / "b" / "documents" / "web"
