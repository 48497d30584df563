"""Web addresses as the index stores and shows them: plain string work, no network.

The fetcher, the sidecar reader, the pipeline and the store all need these; keeping them
here means none of those has to import the downloader (and httpx) to recognise or clean a URL.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


__all__ = ["display_url", "is_url"]
