"""Fetch a web page or PDF by URL into the documents folder, so it is ingested like a file.

The download is saved under a name derived from the URL (host + path slug, so fetching the
same URL again replaces the same file and an unchanged page is a no-op for the pipeline),
next to a `NAME.url` sidecar that records where it came from, in the Windows
`[InternetShortcut]` format. The sidecar's suffix is not a document type, so neither the
loaders nor the watcher pick it up; `ingest.sidecar.source_url(path)` reads it back.

Size and type are checked while streaming: a server that lies about Content-Length, or
sends none, still cannot make us write more than `max_bytes`.

Every connection, redirects included, goes through `_GuardedBackend`: the host name is
resolved once, every address it resolves to must be public (not loopback, private,
link-local, cloud metadata, multicast or reserved) unless the host is named in
DOSSIER_FETCH_ALLOW_HOSTS, and the socket connects to the address that was checked. It also
holds the whole download to one deadline, so a server that sends a byte a second cannot
keep `dossier ingest URL` waiting past it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from dossier_common.errors import DossierError
from dossier_common.settings import Settings
from dossier_common.urls import display_url, is_url
from ingest.sidecar import SIDECAR_SUFFIX, sign_sidecar, source_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # seconds for the whole download, redirects included
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
# Bytes looked at to tell text from binary; control bytes other than whitespace are rare in
# any text encoding but about one in eight in compressed or random data.
_SNIFF_BYTES = 8192
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_CHARS = 120


class FetchError(DossierError):
    """A URL could not be fetched or is not a document we accept."""


class AddressRefused(FetchError):
    """A host resolves to an address `dossier ingest URL` must not reach (SSRF)."""


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


def fetch_url(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    timeout: float = DEFAULT_TIMEOUT,
    allow_hosts: Collection[str] = (),
) -> Path:
    """Download `url` (an http(s) web page, PDF, text or markdown file) into `dest_dir`.

    Follows redirects, each checked like the first address; `timeout` bounds the whole
    download. Refuses non-public addresses (unless their host is in `allow_hosts`), other
    content types, bodies over `max_bytes` and HTTP errors with a FetchError whose message
    names the URL. Returns the saved file's path.
    """
    if not is_url(url):
        raise FetchError(f"Not a web address: {url!r} (only http:// and https:// URLs can be fetched).")
    if not urlsplit(url).hostname:
        raise FetchError(f"Not a web address: {url!r} has no host name.")
    shown = display_url(url)  # what messages, logs, the sidecar and citations show
    dest_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(dest_dir)
    backend = _GuardedBackend(allow_hosts, deadline=time.monotonic() + timeout)
    try:
        with (
            httpx.Client(
                follow_redirects=True,
                timeout=timeout,
                headers={"User-Agent": USER_AGENT},
                transport=_guarded_transport(backend),
                # Proxies from the environment would connect on our behalf to addresses we
                # cannot check; the fetch goes direct.
                trust_env=False,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise FetchError(
                    f"Could not fetch {shown}: the server answered {response.status_code} {reason}."
                )
            media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{shown} is {_mb(int(declared))}; the limit is {_mb(max_bytes)}.")
            final = display_url(str(response.url))
            return _save(shown, final, media_type, response.iter_bytes(), dest_dir, max_bytes)
    except AddressRefused as err:
        raise FetchError(f"Could not fetch {shown}: {err}") from None
    except httpx.TimeoutException:
        raise FetchError(f"Could not fetch {shown}: not done within {timeout:g} s.") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"Could not fetch {shown}: too many redirects.") from None
    except httpx.HTTPError as err:
        detail = f"{type(err).__name__}: {err}".rstrip(": ")
        raise FetchError(f"Could not fetch {shown}: {detail}.") from None


def fetch_to_documents(url: str, settings: Settings) -> Path:
    """`fetch_url` into DOSSIER_DOCS_DIR/web with the configured limits and allowed hosts; the
    sidecar is signed, so that ingest believes it (ingest.sidecar)."""
    path = fetch_url(
        url,
        settings.documents_dir / "web",
        max_bytes=int(settings.fetch_max_mb * 1024 * 1024),
        timeout=settings.fetch_timeout,
        allow_hosts=settings.fetch_allow_hosts,
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
                if len(head) < _SNIFF_BYTES:
                    head += block[: _SNIFF_BYTES - len(head)]
                out.write(block)
        if suffix is None:
            if not head.startswith(_PDF_MAGIC):
                raise FetchError(_type_message(url, media_type or "no content type"))
            suffix = ".pdf"
        elif suffix != ".pdf" and _looks_binary(head):
            raise FetchError(f"{url} is labelled {media_type} but its content is binary, not text.")
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


# -- where a download may connect ---------------------------------------------------------

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # IPv4 addresses reached through a NAT64 gateway
# A partial download untouched this long belongs to no running fetch (each has a deadline).
_STALE_PART_SECONDS = 600


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address on the public internet; addresses tunnelled in IPv6 are unwrapped."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(embedded):
            return False
    # is_global is False for loopback, RFC 1918, link-local (169.254.169.254, the cloud
    # metadata service), shared (100.64/10), ULA, documentation and reserved ranges.
    return address.is_global and not address.is_multicast


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    return "not a public address"


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def resolve_public(host: str, port: int, allow_hosts: Collection[str] = ()) -> list[str]:
    """The addresses `host` resolves to, refused with AddressRefused unless every one is public.

    A host named in `allow_hosts` is returned as it is, unresolved: the user said it may be
    reached. Every address must pass, not just the first, because the socket library would
    otherwise be free to try the next one.
    """
    name = _normalise_host(host)
    if name in {_normalise_host(h) for h in allow_hosts}:
        return [host]
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise httpcore.ConnectError(f"cannot resolve {name}: {err}") from err
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # an IPv6 zone ("fe80::1%eth0") is not part of it
        address = ipaddress.ip_address(text)
        if not _is_public(address):
            raise AddressRefused(
                f"{name} is {address}, {_kind(address)}; addresses that are not public are refused"
                f" unless DOSSIER_FETCH_ALLOW_HOSTS names the host."
            )
        if text not in addresses:
            addresses.append(text)
    return addresses


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to checked addresses, and only until the download's deadline."""

    def __init__(self, allow_hosts: Collection[str], deadline: float) -> None:
        self.allow_hosts = tuple(allow_hosts)
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        # The socket is opened to the very address that was checked, never to the name,
        # so a second DNS answer cannot swap in an internal address.
        for address in resolve_public(host, port, self.allow_hosts):
            try:
                stream = super().connect_tcp(
                    address,
                    port,
                    _time_left(self.deadline, timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except httpcore.ConnectError as err:
                failure = err
                continue
            return _DeadlineStream(stream, self.deadline)
        raise failure or httpcore.ConnectError(f"no address for {host}")


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes never wait past one deadline for the whole download."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self.inner = inner
        self.deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _time_left(self.deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _time_left(self.deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        left = _time_left(self.deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, left), self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


def _time_left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the download's deadline has passed")
    return left if timeout is None else min(timeout, left)


def _guarded_transport(backend: _GuardedBackend) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx has no public way to hand its connection pool a network backend; the pool does
    # (httpcore.ConnectionPool(network_backend=...)). Fail loudly if that ever moves, rather
    # than fetch unchecked.
    pool = transport._pool
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx version cannot check fetch addresses; pin httpx<0.29")
    pool._network_backend = backend
    return transport


def _remove_stale_parts(dest_dir: Path) -> None:
    """Delete partial downloads left by a killed fetch (untouched for longer than any fetch runs)."""
    cutoff = time.time() - _STALE_PART_SECONDS
    for part in dest_dir.glob(".fetch-*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
        except OSError:
            continue  # another fetch finished with it, or it is not ours to remove


def _looks_binary(head: bytes) -> bool:
    """True when the first bytes of a body said to be text are not text in any encoding we read."""
    if head.startswith(_UTF16_BOMS):
        return False  # UTF-16 text is full of NUL bytes; the loaders read it
    controls = sum(1 for byte in head if byte < 0x20 and byte not in _TEXT_CONTROLS)
    return b"\x00" in head or controls > len(head) // 100


def _type_message(url: str, media_type: str) -> str:
    kinds = "web pages (HTML), PDFs, plain text and markdown"
    return f"{url} is {media_type}, not a document Dossier reads ({kinds})."


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


__all__ = [
    "AddressRefused",
    "FetchError",
    "display_url",
    "fetch_to_documents",
    "fetch_url",
    "file_name_for",
    "is_url",
    "resolve_public",
    "source_url",
]
