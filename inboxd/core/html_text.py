"""HTML mail to readable plain text, fast (selectolax/lexbor).

Used when a mail has no text part and to show HTML mail to agents in plain
form. Block elements and <br> become line breaks; script/style/head vanish;
quoted history (blockquote) is kept but every line is prefixed with "> ", so
the reply stripper treats it exactly like a plain-text quote.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

_MANY_NL = re.compile(r"\n{3,}")
# Input bound: a pathological 50 MB HTML body is cut rather than converted in full.
MAX_HTML_CHARS = 4 * 1024 * 1024


def parse_html(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html[:MAX_HTML_CHARS])


# Fast path: mark block boundaries in the source with private-use characters, let
# lexbor extract all text in C, then turn the marks into line breaks. Table tags are
# renamed to div/span first, so the parser never foster-parents our marks out of a table.
_NL, _CELL_MARK, _QOPEN, _QCLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_BR, _PARA = "\ue004", "\ue005"
_STRIP = ["script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe"]
_MARKS = re.compile("([\ue000\ue002\ue003\ue004\ue005])")
_ALL_MARKS = re.compile("[\ue000-\ue005]")


_BLOCK_NAMES = (
    r"p|div|li|h[1-6]|pre|ul|ol|dl|dt|dd|hr|section|article|header|footer|address|center|"
    r"form|fieldset|figure|figcaption|main|nav|aside|details|summary"
)
# Every pattern starts with a literal "<" (fast scan) and replaces with a literal string:
# a lookahead-first pattern or a template with group references is several times slower.
_PASSES = (
    (re.compile(r"<(?:table|tbody|thead|tfoot|tr|caption)(?=[\s/>])", re.I), "\ue000<div"),
    (re.compile(r"</(?:table|tbody|thead|tfoot|tr|caption)(?=[\s/>])", re.I), "\ue000</div"),
    (re.compile(r"<(?:td|th)(?=[\s/>])", re.I), "\ue001<span"),
    (re.compile(r"</(?:td|th)(?=[\s/>])", re.I), "</span"),
    (re.compile(r"<blockquote(?=[\s/>])", re.I), "\ue002<blockquote"),
    (re.compile(r"</blockquote(?=[\s/>])", re.I), "\ue003</blockquote"),
    (re.compile(r"</p(?=[\s/>])", re.I), "\ue005</p"),
    (re.compile(r"<br(?=[\s/>])", re.I), "\ue004<br"),
    (re.compile(r"<(?=/?(?:" + _BLOCK_NAMES + r")[\s/>])", re.I), "\ue000<"),
)
_SOFT_RUN = re.compile("\ue000{2,}")


def _mark_blocks(html: str) -> str:
    """Insert the private-use marks (C-level substitutions, no Python callbacks)."""
    for pattern, replacement in _PASSES:
        html = pattern.sub(replacement, html)
    return html


def _flat_lines(raw: str) -> str:
    """Marks to line breaks when there is no blockquote (the common case).

    Only str.replace and literal-prefix regexes: this runs on every HTML-only mail.
    """
    for mark in ("\ue000", "\ue004", "\ue005"):
        raw = raw.replace(" " + mark, mark).replace(mark + " ", mark)
    raw = _SOFT_RUN.sub("\ue000", raw)
    # A block boundary right after a <br> or </p> adds no further line break.
    raw = raw.replace("\ue004\ue000", "\ue004").replace("\ue005\ue000", "\ue005")
    raw = raw.lstrip("\ue000")
    raw = raw.replace("\ue000", "\n").replace("\ue004", "\n").replace("\ue005", "\n\n")
    return _MANY_NL.sub("\n\n", raw).strip()


def html_to_text(html: str, *, mark_quotes: bool = True) -> str:
    """Readable text of ``html``; blockquote lines prefixed "> " when ``mark_quotes``."""
    if not html or not html.strip():
        return ""
    html = _ALL_MARKS.sub("", html[:MAX_HTML_CHARS])
    try:
        tree = LexborHTMLParser(_mark_blocks(html))
        tree.strip_tags(_STRIP)
        root = tree.body or tree.root
        raw = root.text(deep=True, separator="", strip=False) if root is not None else ""
    except Exception:
        return _strip_tags_crudely(html)
    # str.split() treats NBSP and all Unicode spaces as whitespace, at C speed.
    raw = " ".join(raw.replace(_CELL_MARK, " ").replace("\u200b", "").split())
    if _QOPEN not in raw:
        return _flat_lines(raw)
    out: list[str] = []
    depth = 0
    current: list[str] = []
    line_depth = 0

    def end_line(force: bool) -> None:
        nonlocal current, line_depth
        line = " ".join("".join(current).split())
        if line or force:
            if mark_quotes and line_depth > 0:
                line = ("> " * line_depth + line).rstrip()
            out.append(line)
        current = []
        line_depth = depth

    for token in _MARKS.split(raw):
        if token == _NL:
            end_line(force=False)
        elif token == _BR:
            end_line(force=True)
        elif token == _PARA:
            end_line(force=False)
            if out and out[-1] != "":
                out.append("")
        elif token == _QOPEN:
            end_line(force=False)
            depth += 1
            line_depth = depth
        elif token == _QCLOSE:
            end_line(force=False)
            depth = max(0, depth - 1)
            line_depth = depth
        elif token:
            if not "".join(current).strip():
                line_depth = depth
            current.append(token)
    end_line(force=False)
    return _MANY_NL.sub("\n\n", "\n".join(out)).strip("\n")


_TAG = re.compile(r"<[^>]{0,2000}>")


def _strip_tags_crudely(html: str) -> str:
    import html as html_mod

    return html_mod.unescape(_TAG.sub(" ", html)).strip()
