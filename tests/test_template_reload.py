"""Template edits reach outgoing mail through the daemon's reload (SIGHUP), not per mail.

Renderers compile each template once (no file checks on the ingest path), so
this pins the other half: the daemon's reload swaps in the edited set.
"""

from __future__ import annotations

import email
import shutil
import threading
import time
from email import policy
from pathlib import Path

from sqlalchemy import text

from inboxd.config import parse_settings
from inboxd.daemon import App, Daemon
from inboxd.db import outbox_queries as q
from inboxd.db.engine import make_engine
from inboxd.flows.queued_mail import QueuedMailWriter
from inboxd.flows.render import SAMPLE_CONTEXT
from inboxd.ingest.pipeline import Source
from inboxd.sdnotify import Notifier

REPO = Path(__file__).resolve().parents[1]


def build_app(tmp_path: Path) -> App:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "secret").write_text("template-reload\n")
    cfg = tmp_path / "inboxd.toml"
    config = f"""
[database]
url = "sqlite:///{tmp_path / "db.sqlite"}"
[helpdesk]
secret_file = "secret"
[templates]
dir = "{tmp_path / "templates"}"
[lmtp]
enabled = false
[[mailbox]]
name = "support"
address = "support@help.example"
"""
    return App.build(parse_settings(config, cfg))


def new_mail(n: int) -> bytes:
    return (
        f"From: Customer {n} <c{n}@customer.example>\r\nTo: support@help.example\r\n"
        f"Subject: Question {n}\r\nMessage-ID: <q{n}@customer.example>\r\n\r\nHello {n}\r\n"
    ).encode()


def ack_subjects(app: App) -> list[str]:
    """The acknowledgements' subjects as the drain would write them now (the
    templates current at this moment: a queued mail is written when it is sent)."""
    read_only = make_engine(app.settings.database.url, read_only=True)
    writer = QueuedMailWriter(read_only, lambda: app.outbound.templates.current)
    with app.engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM outbox WHERE kind = 'ack' ORDER BY id")).all()
        rows = [q.get(conn, i) for (i,) in ids]
    raws = [writer(row) for row in rows if row is not None]
    return [str(email.message_from_bytes(r, policy=policy.default)["Subject"]) for r in raws]


def test_template_edit_applies_after_reload_only(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    daemon = Daemon(app, notifier=Notifier(None))
    assert app.pipeline.ingest(new_mail(1), Source("lmtp", "support")).status == "stored"
    ack = tmp_path / "templates" / "ack.txt"
    ack.write_text("Subject: Edited {{ ticket.subject }}\n" + ack.read_text().partition("\n")[2])
    assert app.pipeline.ingest(new_mail(2), Source("lmtp", "support")).status == "stored"
    before_reload = ack_subjects(app)
    daemon.reload_rules(trigger="SIGHUP")
    assert app.pipeline.ingest(new_mail(3), Source("lmtp", "support")).status == "stored"
    subjects = ack_subjects(app)
    assert len(before_reload) == 2 and len(subjects) == 3, subjects
    assert not any("Edited" in s for s in before_reload), before_reload
    assert subjects[2].startswith("[#") and "Edited Question 3" in subjects[2], subjects


def test_a_saved_template_is_picked_up_by_the_file_watcher(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    daemon = Daemon(app, notifier=Notifier(None))
    stop = threading.Event()
    watcher = threading.Thread(target=daemon._watch_rules, args=(stop,), daemon=True)
    watcher.start()
    try:
        time.sleep(0.5)  # the watcher is set up (a missed edit fails the test, not hangs it)
        ack = tmp_path / "templates" / "ack.txt"
        body = ack.read_text().partition("\n")[2]
        ack.write_text("Subject: Watched {{ ticket.subject }}\n" + body)

        def current_subject() -> str:
            return app.outbound.templates.current.render("ack", **SAMPLE_CONTEXT).subject

        watched = "Watched " + SAMPLE_CONTEXT["ticket"]["subject"]
        deadline = time.monotonic() + 15
        while current_subject() != watched and time.monotonic() < deadline:
            time.sleep(0.05)
        assert current_subject() == watched, "the watcher did not reload the edited template"
        assert app.pipeline.ingest(new_mail(4), Source("lmtp", "support")).status == "stored"
        assert "Watched Question 4" in ack_subjects(app)[-1]
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
