"""`NAME.url` sidecars: where a fetched file came from, and which sidecars to believe.

A sidecar makes citations show a URL instead of the file's name. Anyone who can drop files
into an ingested folder could write one, and make a local file pass for, say, an official
web page. So the fetcher signs the sidecars it writes: an HMAC, with a key kept in
DOSSIER_HOME, over the file's name, its URL and its content. A sidecar without a valid
signature is ignored (the file is cited by its name); so is one whose file was edited since
it was fetched.

Nothing here touches the network: the pipeline reads sidecars without importing the fetcher.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from dossier_common.settings import Settings
from dossier_common.urls import display_url, is_url
from index.layout import Layout
from ingest.loaders import file_hash

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".url"
_SIGNATURE = "X-Dossier-Signature"


def source_url(path: Path) -> str | None:
    """The URL a fetched file came from (read from its sidecar, signed or not), or None for
    ordinary files. `trusted_url` decides whether to believe it."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        text = sidecar.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().upper() == "URL" and is_url(value.strip()):
            return display_url(value.strip())  # sidecars written before credentials were stripped
    return None


def _key(settings: Settings, *, create: bool) -> bytes | None:
    path = Layout(settings.home).fetch_key
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        if not create:
            return None
    settings.home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # Readable by its owner only; O_EXCL so two fetchers never overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _key(settings, create=False)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key.hex())
    return key


def _signature(key: bytes, name: str, url: str, digest: str) -> str:
    return hmac.new(key, f"{name}\0{url}\0{digest}".encode(), hashlib.sha256).hexdigest()


def sign_sidecar(path: Path, settings: Settings) -> None:
    """Add the signature to the sidecar the fetcher just wrote next to `path`."""
    url = source_url(path)
    if url is None:
        return
    key = _key(settings, create=True)
    assert key is not None
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    signature = _signature(key, path.name, url, file_hash(path))
    tmp = sidecar.with_name(f".{sidecar.name}.{secrets.token_hex(4)}.part")
    tmp.write_text(f"[InternetShortcut]\nURL={url}\n{_SIGNATURE}={signature}\n", encoding="utf-8")
    os.replace(tmp, sidecar)


def trusted_url(path: Path, settings: Settings, digest: str, recorded: str | None = None) -> str | None:
    """The URL `path` was fetched from, if its sidecar was signed by our fetcher for this
    very content (`digest`, the sha256 of the file); else None.

    `recorded` is the source the manifest already holds for this file: an unsigned sidecar
    written before sidecars were signed is still believed for the URL it was indexed under,
    so an upgrade changes no citation and re-embeds nothing."""
    url = source_url(path)
    if url is None:
        return None
    key = _key(settings, create=False)
    try:
        lines = path.with_name(path.name + SIDECAR_SUFFIX).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    given = next(
        (v.strip() for k, _, v in (ln.partition("=") for ln in lines) if k.strip() == _SIGNATURE), ""
    )
    if not given and url == recorded:
        return url
    if key is None or not hmac.compare_digest(given, _signature(key, path.name, url, digest)):
        log.info("ignoring the unsigned or outdated sidecar of %s", path)
        return None
    return url


__all__ = ["SIDECAR_SUFFIX", "sign_sidecar", "source_url", "trusted_url"]
