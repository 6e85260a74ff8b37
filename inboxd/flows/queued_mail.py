"""Write a queued mail: the outbox row's intent rendered into the bytes to send.

The drain calls this for each row it delivers (``delivery`` takes it as a
plain callable from the daemon). The templates are the current set; the
attachments are read from their blobs. Whatever makes the mail unwritable (a
template that fails, a blob that was forgotten, an unreadable intent) is an
``IntentError``: the drain fails the row for good with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from inboxd.core.compose import ComposeError, render_message
from inboxd.core.queued import IntentError, decode
from inboxd.db import messages
from inboxd.db.outbox_queries import OutboxMail
from inboxd.flows.notify import quoted_text
from inboxd.flows.render import Rendered, TemplateError, TemplateRenderer


class QueuedMailWriter:
    """``engine``: a read-only one (``make_engine(url, read_only=True)``), so the drain
    reads a snapshot instead of queueing behind an import for the SQLite write lock;
    ``renderer``: the current template set (reloadable)."""

    def __init__(self, engine: Engine, renderer: Callable[[], TemplateRenderer]) -> None:
        self.engine = engine
        self.renderer = renderer

    def __call__(self, row: OutboxMail) -> bytes:
        if not row.intent:
            return row.raw
        queued = decode(row.intent)
        letter = queued.letter
        context, files = letter.context, {}
        if letter.text_of or queued.attachments:  # one snapshot read for both
            with self.engine.connect() as conn:
                if letter.text_of:
                    context = _with_text(conn, letter.text_of, context)
                files = messages.blobs(conn, [r.sha256 for r in queued.attachments])
        try:
            if letter.template:
                rendered = self.renderer().render(letter.template, **context)
            else:
                rendered = Rendered(letter.subject, letter.text, letter.html)
        except TemplateError as exc:
            raise IntentError(f"template {exc}") from exc
        missing = [r.filename for r in queued.attachments if r.sha256 not in files]
        if missing:
            raise IntentError(f"attachment no longer stored: {', '.join(missing)}")
        attachments = tuple(r.with_data(files[r.sha256]) for r in queued.attachments)
        mail = queued.outbound(rendered.subject, rendered.text, rendered.html, attachments)
        try:
            return render_message(mail, date=queued.date)
        except ComposeError as exc:
            raise IntentError(str(exc)) from exc


def _with_text(conn: Connection, row_id: int, context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` with its ``message`` quoting stored mail ``row_id`` (Letter.text_of)."""
    found = messages.text_of(conn, row_id)
    if found is None:
        raise IntentError(f"the mail it quotes (row {row_id}) is no longer stored")
    new_text, text, html = found
    message = {**context.get("message", {}), "text": quoted_text(new_text, text), "html": html}
    return {**context, "message": message}
