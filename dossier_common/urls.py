"""Web addresses as the index stores and shows them: plain string work, no network.

The fetcher, the sidecar reader, the pipeline and the store all need these; keeping them
here means none of those has to import the downloader (and httpx) to recognise or clean a URL.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Query parameters that commonly carry a credential ("?token=", "&api_key=", "&X-Amz-Signature=").
_SECRET_PARAM = re.compile(
    r"(?i)token|key|sig|signature|secret|password|passwd|pwd|auth|credentials?|session|sid"
)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def display_url(url: str) -> str:
    """`url` without credentials: no `user:pass@`, no query parameters that look like secrets.

    This is the name a fetched page is stored, cited and logged under; the download itself
    uses the URL as given.

    >>> display_url("https://alice:pw@example.com/a?page=2&token=abc")
    'https://example.com/a?page=2'
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _is_secret_param(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _is_secret_param(name: str) -> bool:
    # The last word decides: "access_token", "api-key", "X-Amz-Signature", but not "keyword".
    return bool(_SECRET_PARAM.fullmatch(re.split(r"[-_.]", name)[-1]))


# A text fragment names the start of the quote: enough words to be unique on a page, short
# enough that a line break or a footnote mark in the page's own text is unlikely to fall inside.
FRAGMENT_WORDS = 8
FRAGMENT_CHARS = 80


def quote_link(url: str, quote_text: str) -> str:
    """`url` with a text fragment (`#:~:text=`) on the start of `quote_text`, so a browser that
    supports them scrolls to the quote and highlights it (any fragment of `url` is replaced).

    >>> quote_link("https://example.com/a#top", "Prices rose 4% - a record, said A&B.")
    'https://example.com/a#:~:text=Prices%20rose%204%25%20%2D%20a%20record%2C%20said%20A%26B.'
    """
    words = quote_text.split()[:FRAGMENT_WORDS]
    start = " ".join(words)
    if len(start) > FRAGMENT_CHARS:
        start = start[:FRAGMENT_CHARS].rsplit(" ", 1)[0] or start[:FRAGMENT_CHARS]
    base = url.split("#", 1)[0]
    if not start:
        return base
    # "-", "," and "&" have meanings inside a text directive: percent-encoded like the rest.
    return f"{base}#:~:text={quote(start, safe='').replace('-', '%2D')}"


__all__ = ["display_url", "is_url", "quote_link"]
