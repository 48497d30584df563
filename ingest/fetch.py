"""Fetch a web page or PDF by URL into the documents folder, so it is ingested like a file.

The download is saved under a name derived from the URL (host + path slug, so fetching the
same URL again replaces the same file and an unchanged page is a no-op for the pipeline),
next to a `NAME.url` sidecar that records where it came from, in the Windows
`[InternetShortcut]` format. The sidecar's suffix is not a document type, so neither the
loaders nor the watcher pick it up; `source_url(path)` reads it back.

Size and type are checked while streaming: a server that lies about Content-Length, or
sends none, still cannot make us write more than `max_bytes`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from ingest.errors import DossierError
from ingest.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "dossier/0.1 (+document question answering; fetches one URL on request)"

# Media type -> suffix the loaders know.
ALLOWED_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
}
# Servers often send PDFs as a generic binary type; the magic number settles it.
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/x-download"}
_PDF_MAGIC = b"%PDF-"
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_CHARS = 120
SIDECAR_SUFFIX = ".url"


class FetchError(DossierError):
    """A URL could not be fetched or is not a document we accept."""


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def file_name_for(url: str, suffix: str) -> str:
    """A safe, stable file name for `url`: host, path slug and (for a query) a short hash.

    >>> file_name_for("https://Example.com/blog/Post%201.html?page=2", ".html")
    'example.com_blog_Post-1-4b5e1c1f.html'
    """
    parts = urlsplit(url)
    host = (parts.hostname or "page").lower()
    if parts.port:
        host += f"-{parts.port}"
    path = unquote(parts.path)
    stem, dot, ext = path.rpartition(".")
    if dot and "/" not in ext and f".{ext.lower()}" in {suffix, ".htm", ".html", ".pdf", ".txt", ".md"}:
        path = stem  # "post.html" -> "post", the suffix is added back from the content type
    slug = _SLUG_UNSAFE.sub("-", f"{host}/{path}".replace("/", "_")).strip("-_.")
    slug = re.sub(r"[-_.]{2,}", lambda m: "_" if "_" in m.group(0) else m.group(0)[0], slug)
    tag = ""
    if parts.query or len(slug) > _MAX_NAME_CHARS:
        tag = "-" + hashlib.sha256(url.encode()).hexdigest()[:8]
        slug = slug[:_MAX_NAME_CHARS].rstrip("-_.")
    return f"{slug or host}{tag}{suffix}"


def source_url(path: Path) -> str | None:
    """The URL a fetched file came from (read from its sidecar), or None for ordinary files."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        text = sidecar.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().upper() == "URL" and is_url(value.strip()):
            return value.strip()
    return None


def fetch_url(url: str, dest_dir: Path, *, max_bytes: int, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download `url` (an http(s) web page, PDF, text or markdown file) into `dest_dir`.

    Follows redirects; refuses other content types, bodies over `max_bytes` and HTTP errors
    with a FetchError whose message names the URL. Returns the saved file's path.
    """
    if not is_url(url):
        raise FetchError(f"Not a web address: {url!r} (only http:// and https:// URLs can be fetched).")
    if not urlsplit(url).hostname:
        raise FetchError(f"Not a web address: {url!r} has no host name.")
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with (
            httpx.Client(
                follow_redirects=True, timeout=timeout, headers={"User-Agent": USER_AGENT}
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise FetchError(
                    f"Could not fetch {url}: the server answered {response.status_code} {reason}."
                )
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{url} is {_mb(int(declared))}; the limit is {_mb(max_bytes)}.")
            return _save(url, str(response.url), media_type, response.iter_bytes(), dest_dir, max_bytes)
    except httpx.TimeoutException:
        raise FetchError(f"Could not fetch {url}: no answer within {timeout:g} s.") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"Could not fetch {url}: too many redirects.") from None
    except httpx.HTTPError as err:
        raise FetchError(f"Could not fetch {url}: {type(err).__name__}: {err}".rstrip(": ") + ".") from None


def fetch_to_documents(url: str, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """`fetch_url` into DOSSIER_DOCS_DIR/web with the configured size limit; the sidecar is
    signed, so that ingest believes it (ingest.sidecar)."""
    from ingest.sidecar import sign_sidecar

    path = fetch_url(
        url,
        settings.documents_dir / "web",
        max_bytes=int(settings.fetch_max_mb * 1024 * 1024),
        timeout=timeout,
    )
    sign_sidecar(path, settings)
    return path


def _save(
    url: str, final_url: str, media_type: str, body: Iterator[bytes], dest_dir: Path, max_bytes: int
) -> Path:
    suffix = ALLOWED_TYPES.get(media_type)
    if suffix is None and media_type not in _GENERIC_TYPES:
        raise FetchError(_type_message(url, media_type))
    # A hidden temporary name: neither the pipeline nor a watcher looks at it before it is whole.
    tmp = dest_dir / f".fetch-{secrets.token_hex(8)}.part"
    try:
        size = 0
        head = b""
        with tmp.open("xb") as out:
            for block in body:
                size += len(block)
                if size > max_bytes:
                    raise FetchError(f"{url} is larger than the {_mb(max_bytes)} limit; download stopped.")
                if len(head) < len(_PDF_MAGIC):
                    head += block[: len(_PDF_MAGIC)]
                out.write(block)
        if suffix is None:
            if not head.startswith(_PDF_MAGIC):
                raise FetchError(_type_message(url, media_type or "no content type"))
            suffix = ".pdf"
        if size == 0:
            raise FetchError(f"{url} returned an empty document.")
        # Named after the address the user gave, so fetching it again replaces the same file.
        target = dest_dir / file_name_for(url, suffix)
        sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
        # The sidecar first: whoever sees the document can already tell where it came from.
        sidecar.write_text(f"[InternetShortcut]\nURL={url}\n", encoding="utf-8")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if final_url != url:
        log.info("%s redirected to %s", url, final_url)
    log.info("fetched %s (%s, %d bytes) into %s", url, media_type or "pdf", size, target)
    return target


def _type_message(url: str, media_type: str) -> str:
    kinds = "web pages (HTML), PDFs, plain text and markdown"
    return f"{url} is {media_type}, not a document Dossier reads ({kinds})."


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


__all__ = ["FetchError", "fetch_to_documents", "fetch_url", "file_name_for", "is_url", "source_url"]
