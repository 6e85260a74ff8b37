"""Mail texts from admin-edited jinja2 templates in ``templates/``.

Each mail has ``NAME.txt`` (whose first line is ``Subject: ...``) and
``NAME.html``; saved responses for ``#canned NAME`` are ``canned/NAME.txt``.
The environment is sandboxed (templates are admin input, but an admin typo must
not become code execution or attribute walking), HTML is autoescaped, and an
undefined variable is an error, not an empty string: ``inboxd templates check``
renders everything with sample data so such errors surface before a customer
gets "Hello ,".

The subject sits in the .txt template rather than in a block or a separate
file, so one file shows an admin everything about the text version of a mail.
The ticket tag is NOT written in templates: ``core.compose.subject_with_tag``
adds it, exactly once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from inboxd.core.compose import header_safe
from inboxd.core.desk import Status
from inboxd.core.sanitize import sanitize_html

MAIL_TEMPLATES = (
    "ack",
    "notify",
    "reply",
    "note_ack",
    "command_result",
    "sla_reminder",
    "sla_breach",
    "bounce_alert",
    "csat",
    "csat_alert",
    "digest",
)
_CANNED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SUBJECT_PREFIX = "subject:"
_T = TypeVar("_T")


class TemplateError(Exception):
    """A template is missing, malformed or fails to render; the message names it."""


class Rendered(NamedTuple):
    subject: str
    text: str
    html: str


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.rstrip("\n").split("\n"))


def _nl2br(text: str) -> Markup:
    # escape once, then mark line breaks: Markup.join would escape every line again
    return Markup(str(escape(text.rstrip("\n"))).replace("\n", "<br>\n"))


@functools.lru_cache(maxsize=8)  # a mail's HTML once, not once per agent notified of it
def _sanitize(html: str) -> Markup:
    return Markup(sanitize_html(html))


def _dt(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _filesize(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB"):
        if amount < 1024 or unit == "MB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"  # pragma: no cover - loop always returns


class TemplateRenderer:
    """Renders the mail templates of one directory.

    Each template is read and compiled once, on first use, and kept for the life
    of the instance: no file is looked at again per mail (a stat per template per
    render was most of a render's file cost). Edits take effect on reload
    (SIGHUP, ``TemplateStore.reload``): that makes a new instance, and its
    ``check()`` result, which compiles every template, decides whether the new
    set replaces the running one, so a broken edit never reaches a customer.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            cache_size=0,  # we cache compiled templates ourselves
            auto_reload=False,
        )
        # name -> (subject template, body template) / html template, None when no file
        self._compiled: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}
        self._html: dict[str, jinja2.Template | None] = {}
        self.env.filters.update(
            quote=_quote, nl2br=_nl2br, sanitize=_sanitize, dt=_dt, filesize=_filesize
        )

    def _run(self, name: str, render: Callable[[], _T]) -> _T:
        """Call ``render``, turning every template failure into a TemplateError."""
        try:
            return render()
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"{name}: template not found in {self.directory}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.name or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{name}: {exc.message}") from exc
        except jinja2.TemplateError as exc:  # includes SecurityError from the sandbox
            raise TemplateError(f"{name}: {exc}") from exc
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise TemplateError(f"{name}: {type(exc).__name__}: {exc}") from exc

    def _render_file(self, name: str, ctx: Mapping[str, Any]) -> str:
        return self._run(name, lambda: self.env.get_template(name).render(**ctx))

    def _text_parts(self, name: str) -> tuple[jinja2.Template, jinja2.Template]:
        """The subject line and the body of a .txt template, compiled APART.

        Rendering the whole file and splitting at the first newline would let a
        newline in ticket data (a customer's subject) move text from the subject
        into the body; compiled apart, the subject is one line whatever it holds.
        """
        cached = self._compiled.get(name)
        if cached is not None:
            return cached
        assert self.env.loader is not None
        source, _, _ = self.env.loader.get_source(self.env, name)
        first, _, rest = source.partition("\n")
        if not first.lower().startswith(_SUBJECT_PREFIX):
            raise TemplateError(f"{name}: the first line must be 'Subject: ...'")
        subject = self.env.from_string(first[len(_SUBJECT_PREFIX) :])
        body = self.env.from_string("\n" + rest)  # keeps line numbers in errors true
        subject.name = body.name = name
        self._compiled[name] = (subject, body)
        return subject, body

    def _html_template(self, name: str) -> jinja2.Template | None:
        """The compiled ``name`` (an .html file), None when there is no such file."""
        if name in self._html:
            return self._html[name]
        template = None
        if (self.directory / name).is_file():
            template = self._run(name, lambda: self.env.get_template(name))
        self._html[name] = template
        return template

    def render(self, name: str, **ctx: Any) -> Rendered:
        """Subject, text and HTML of mail ``name``; html is "" when there is no .html."""
        txt = f"{name}.txt"
        subject_tpl, body_tpl = self._run(txt, lambda: self._text_parts(txt))
        subject = header_safe(self._run(txt, lambda: subject_tpl.render(**ctx)))
        text = self._run(txt, lambda: body_tpl.render(**ctx)).lstrip("\n")
        html = ""
        html_tpl = self._html_template(f"{name}.html")
        if html_tpl is not None:
            html = self._run(f"{name}.html", lambda: html_tpl.render(**ctx))
        return Rendered(subject, text, html)

    def canned_names(self) -> list[str]:
        folder = self.directory / "canned"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.txt") if _CANNED_NAME.match(p.stem))

    def render_canned(self, name: str, **ctx: Any) -> str:
        """The text of saved response ``name`` (from ``#canned NAME``)."""
        if not _CANNED_NAME.match(name):
            raise TemplateError(f"canned response name {name!r} is not valid")
        if name not in self.canned_names():
            known = ", ".join(self.canned_names()) or "none"
            raise TemplateError(f"no canned response {name!r} (known: {known})")
        return self._render_file(f"canned/{name}.txt", ctx).strip("\n") + "\n"

    def check(self, context: Mapping[str, Any] | None = None) -> list[str]:
        """Render every template with sample data; the errors, one line each."""
        ctx = dict(SAMPLE_CONTEXT if context is None else context)
        errors: list[str] = []
        if not self.directory.is_dir():
            return [f"{self.directory}: not a directory"]
        for name in MAIL_TEMPLATES:
            for ext in ("txt", "html"):
                if not (self.directory / f"{name}.{ext}").is_file():
                    errors.append(f"{name}.{ext}: missing")
        names = sorted({p.stem for p in self.directory.glob("*.txt")} | set(MAIL_TEMPLATES))
        for name in names:
            if not (self.directory / f"{name}.txt").is_file():
                continue
            try:
                rendered = self.render(name, **ctx)
            except TemplateError as exc:
                errors.append(str(exc))
                continue
            if not rendered.subject:
                errors.append(f"{name}.txt: the subject is empty")
        for path in sorted(self.directory.glob("*.html")):
            if not (self.directory / f"{path.stem}.txt").is_file():
                errors.append(f"{path.name}: has no {path.stem}.txt (the text version)")
        canned_dir = self.directory / "canned"
        for path in sorted(canned_dir.glob("*.txt")) if canned_dir.is_dir() else []:
            if not _CANNED_NAME.match(path.stem):
                errors.append(f"canned/{path.name}: name must be lowercase letters, digits, - _")
                continue
            try:
                self.render_canned(path.stem, **ctx)
            except TemplateError as exc:
                errors.append(str(exc))
        return errors


_SAMPLE_TIME = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _sample_digest() -> dict[str, Any]:
    """A sample team's week: office-hours arrivals, two tickets at risk."""
    from inboxd.core.digest import heat_map
    from inboxd.core.reports.staffing import weekly

    office = [0] * 7 + [30, 90, 140, 120, 100, 60, 90, 110, 80, 50, 20] + [6] * 6
    arrivals = [office if day < 5 else [4] * 24 for day in range(7)]
    need = weekly(arrivals, 4, handle=600, target=3600)
    figures = [
        ("Tickets created", "212", "198"),
        ("Tickets solved", "205", "190"),
        ("First response, median (business)", "42m10s", "55m02s"),
        ("Satisfaction", "91%", "88%"),
    ]
    return {
        "team": "support",
        "start": "2026-02-23",
        "end": "2026-03-01",
        "timezone": "Europe/Berlin",
        "figures": [{"name": a, "this": b, "before": c} for a, b, c in figures],
        "backlog": 17,
        "at_risk": [
            {
                "id": 123,
                "subject": "Printer on floor 3 is broken",
                "assignee": "alice",
                "target": "first response",
                "due_at": _SAMPLE_TIME,
                "breached": True,
            },
            {
                "id": 130,
                "subject": "VPN drops every hour",
                "assignee": "",
                "target": "resolution",
                "due_at": _SAMPLE_TIME,
                "breached": False,
            },
        ],
        "heat": heat_map(arrivals, need),
        "hours": list(range(24)),
        "weeks": 4,
        "staffing": {"handle": 10, "target": 60, "level": "80%", "peak": max(map(max, need))},
    }

# Every variable a template may use; `templates check` renders with exactly this,
# so a template using anything else is reported. templates/README.md lists them.
SAMPLE_CONTEXT: dict[str, Any] = {
    "helpdesk": {"name": "Example Support", "address": "support@help.example"},
    "ticket": {
        "id": 123,
        "subject": "Printer on floor 3 is broken",
        "status": Status.OPEN.value,
        "priority": "normal",
        "assignee": "alice",
        "team": "support",
        "requester": "carol@customer.example",
        "requester_name": "Carol Customer",
        "tags": ["printer"],
        "created_at": _SAMPLE_TIME,
    },
    "customer": {"name": "Carol Customer", "email": "carol@customer.example"},
    "agent": {"name": "Alice Agent", "email": "alice@help.example"},
    "event": "created",
    "message": {
        "from_name": "Carol Customer",
        "from_email": "carol@customer.example",
        "subject": "Printer on floor 3 is broken",
        "date": _SAMPLE_TIME,
        "text": "Hello,\n\nthe printer shows error E42.\n\nCarol",
        "html": "<p>Hello,</p><p>the printer shows <b>error E42</b>.</p><p>Carol</p>",
        "attachments": [{"filename": "error.jpg", "size": 48213}],
    },
    "text": "Hello Carol,\n\nthe technician will be there at 2 pm.\n\nAlice",
    "results": [{"command": "#assign bob", "ok": True, "detail": "assigned to bob"}],
    "errors": [],
    "commands_help": ["#close                           close the ticket"],
    "sla": {
        "name": "first response",
        "policy": "standard",
        "due_at": _SAMPLE_TIME,
        "remaining": "30 minutes",
        "overdue": "2 hours",
    },
    "bounce": {
        "recipients": ["carol@customer.example"],
        "status": "5.1.1",
        "diagnostic": "550 5.1.1 user unknown",
        "original_subject": "Re: [#123] Printer on floor 3 is broken",
    },
    "survey": {
        "good": "support+csat.123-1-abcdefghijkl.good@help.example",
        "bad": "support+csat.123-1-abcdefghijkl.bad@help.example",
        "good_subject": "Rating%3A%20good",
        "bad_subject": "Rating%3A%20bad",
        "change_days": 28,
    },
    "rating": {"rating": "bad", "comment": "Took a week.", "reopened": True},
    "digest": _sample_digest(),
}
