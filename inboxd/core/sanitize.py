"""Customer HTML made safe to show to agents (in notifications).

nh3 (ammonia) removes scripts, event handlers, styles and unknown tags. On top
of its defaults, images may only come from the mail itself (``cid:``) or be
inline raster ``data:`` URLs: a remote image would tell the sender when and
where an agent read the mail (tracking pixels) and can carry a request to an
internal host. Links stay (agents need them) but only http, https, mailto, tel.
"""

from __future__ import annotations

import re

import nh3

_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
_DATA_IMAGE = re.compile(r"^data:image/(?:png|jpeg|jpg|gif|webp|bmp);base64,", re.IGNORECASE)
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}


def _filter(tag: str, attribute: str, value: str) -> str | None:
    """Keep or drop one attribute; URL attributes get the rules above."""
    if attribute not in ("src", "href", "cite"):
        return value
    url = "".join(value.split()).lower()
    if tag == "img" and attribute == "src":
        return value if url.startswith("cid:") or _DATA_IMAGE.match(url) else None
    if attribute == "href":
        return value if url.startswith(_LINK_SCHEMES) or url.startswith("#") else None
    return value if url.startswith(("http:", "https:")) else None


def sanitize_html(html: str) -> str:
    """A safe HTML fragment: no scripts, styles, handlers or remote images."""
    return nh3.clean(
        html,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_filter,
        clean_content_tags={"script", "style", "title", "head"},
    )
