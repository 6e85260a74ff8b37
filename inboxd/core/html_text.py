"""HTML mail to readable plain text, fast (selectolax/lexbor).

Used when a mail has no text part and to show HTML mail to agents in plain
form. Block elements and <br> become line breaks; script/style/head vanish;
quoted history (blockquote) is kept but every line is prefixed with "> ", so
the reply stripper treats it exactly like a plain-text quote.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "center", "dd", "details",
        "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main",
        "menu", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead",
        "tfoot", "tr", "ul", "caption",
    }
)
_SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "-comment",
                   "svg", "object", "iframe", "meta", "link"})
_CELL = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\u00a0\u200b\r\f\v]+")
_MANY_NL = re.compile(r"\n{3,}")
# Input bound: a pathological 50 MB HTML body is cut rather than walked in full.
MAX_HTML_CHARS = 4 * 1024 * 1024


def parse_html(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html[:MAX_HTML_CHARS])


def html_to_text(html: str, *, mark_quotes: bool = True) -> str:
    """Readable text of ``html``; blockquote lines prefixed "> " when ``mark_quotes``."""
    if not html or not html.strip():
        return ""
    try:
        tree = parse_html(html)
    except Exception:
        return _strip_tags_crudely(html)
    root = tree.body or tree.root
    if root is None:
        return ""
    return node_to_text(root, mark_quotes=mark_quotes)


def node_to_text(root: LexborNode, *, mark_quotes: bool = True) -> str:
    """Walk the tree iteratively (deep nesting must not hit the recursion limit)."""
    # Output is built as a list of lines, each tagged with its quote depth.
    lines: list[tuple[int, list[str]]] = [(0, [])]
    depth = 0
    pre = 0

    def newline(force: bool = False) -> None:
        # Block boundaries only end a non-empty line; <br> always does.
        if force or "".join(lines[-1][1]).strip():
            lines.append((depth, []))

    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    steps = 0
    while stack:
        steps += 1
        if steps > 2_000_000:
            break
        node, leaving = stack.pop()
        tag = node.tag or ""
        if leaving:
            if tag == "blockquote":
                depth -= 1
            if tag == "pre":
                pre -= 1
            if tag in _BLOCK:
                newline()
                if tag == "p":
                    newline(force=True)
            elif tag in _CELL:
                lines[-1][1].append("\t")
            continue
        if tag == "-text":
            text = node.text_content or ""
            if not pre:
                text = _SPACES.sub(" ", text.replace("\n", " "))
                if lines[-1][0] != depth and not "".join(lines[-1][1]).strip():
                    lines[-1] = (depth, lines[-1][1])
                lines[-1][1].append(text)
            else:
                first = True
                for part in text.split("\n"):
                    if not first:
                        newline(force=True)
                    lines[-1][1].append(part)
                    first = False
            continue
        if tag in _SKIP:
            continue
        if tag == "br":
            newline(force=True)
            continue
        if tag in _BLOCK:
            newline()
        if tag == "img":
            alt = (node.attributes.get("alt") or "").strip()
            if alt:
                lines[-1][1].append(f"[{alt}]")
            continue
        if tag == "blockquote":
            depth += 1
            if lines[-1][0] != depth and not "".join(lines[-1][1]).strip():
                lines[-1] = (depth, lines[-1][1])
        if tag == "pre":
            pre += 1
        stack.append((node, True))
        children: list[LexborNode] = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, False) for c in reversed(children))

    out: list[str] = []
    for qdepth, parts in lines:
        line = "".join(parts).replace("\t", " ").strip()
        if mark_quotes and qdepth > 0:
            line = ("> " * qdepth + line).rstrip()
        out.append(line)
    text = "\n".join(out)
    text = _MANY_NL.sub("\n\n", text)
    return text.strip("\n")


_TAG = re.compile(r"<[^>]{0,2000}>")


def _strip_tags_crudely(html: str) -> str:
    import html as html_mod

    return html_mod.unescape(_TAG.sub(" ", html)).strip()
