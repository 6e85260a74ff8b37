"""Customer HTML shown to agents: no scripts, no remote images, safe links only."""

from __future__ import annotations

import pytest

from inboxd.core.sanitize import sanitize_html


def test_scripts_styles_and_handlers_go() -> None:
    out = sanitize_html(
        '<p onclick="steal()" style="background:url(http://t.example/x)">hi</p>'
        "<script>alert(1)</script><style>p{}</style><iframe src='http://x'></iframe>"
        "<form action='http://x'><input name=q></form>"
    )
    assert "hi" in out
    for bad in ("script", "alert", "onclick", "style", "iframe", "form", "input", "url("):
        assert bad not in out


@pytest.mark.parametrize(
    "src",
    [
        "http://tracker.example/pixel.gif",
        "https://tracker.example/pixel.gif",
        "//tracker.example/p.gif",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "javascript:alert(1)",
        "file:///etc/passwd",
    ],
)
def test_remote_and_unsafe_images_lose_their_src(src: str) -> None:
    out = sanitize_html(f'<img src="{src}" alt="x">')
    assert "src" not in out
    assert "tracker" not in out


@pytest.mark.parametrize(
    "src", ["cid:logo@mail.example", "CID:logo", "data:image/png;base64,iVBORw0KGgo="]
)
def test_embedded_images_stay(src: str) -> None:
    assert f'src="{src}"' in sanitize_html(f'<img src="{src}">')


def test_srcset_is_dropped() -> None:
    assert "srcset" not in sanitize_html('<img src="cid:a" srcset="http://x.example/a 2x">')


@pytest.mark.parametrize(
    ("href", "kept"),
    [
        ("https://example.com/a", True),
        ("http://example.com/a", True),
        ("mailto:a@b.example", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>x</script>", False),
        ("cid:abc", False),
        ("vbscript:x", False),
    ],
)
def test_links(href: str, kept: bool) -> None:
    out = sanitize_html(f'<a href="{href}">x</a>')
    assert ("href=" in out) is kept
    assert 'rel="noopener noreferrer"' in out


def test_text_survives_escaped() -> None:
    assert sanitize_html("<b>1 &lt; 2</b> & more") == "<b>1 &lt; 2</b> &amp; more"
