"""build_outbound from Settings: the parts exist, in order, and templates reload safely."""

from __future__ import annotations

import shutil
from pathlib import Path

from inboxd.config import parse_settings
from inboxd.daemon.wiring import TemplateStore, build_outbound
from inboxd.db.engine import make_engine, upgrade
from inboxd.flows.agent_reply import AgentReplyInterceptor
from inboxd.flows.bounces import BounceInterceptor
from inboxd.flows.csat import SurveyInterceptor
from inboxd.flows.render import SAMPLE_CONTEXT
from inboxd.flows.sent_folder import SentFolderInterceptor

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_build_outbound(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    text = """
[helpdesk]
domain = "help.example"
secret_env = "X"
[smtp]
host = "127.0.0.1"
port = 2525
retry_for = 600
max_per_run = 7
[[mailbox]]
name = "support"
address = "support@help.example"
sent_folder = "Sent"
"""
    settings = parse_settings(text, tmp_path / "inboxd.toml")
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    out = build_outbound(settings, engine=engine, rules=lambda: None, secret=b"s")
    assert [type(i) for i in out.interceptors] == [
        SentFolderInterceptor,
        BounceInterceptor,
        SurveyInterceptor,
        AgentReplyInterceptor,
    ]
    assert out.flow.config.sent_folders == {"support": "Sent"}
    assert out.flow.support_address("support") == "support@help.example"
    assert out.drain.max_per_run == 7 and out.drain.retry_for == 600
    assert out.templates.current.check() == []


def test_template_reload_keeps_the_good_set(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATES, tmp_path / "t")
    store = TemplateStore(tmp_path / "t")
    good = store.current
    subject = good.render("ack", **SAMPLE_CONTEXT).subject
    (tmp_path / "t" / "ack.txt").write_text("Subject: {{ oops }\n")
    (tmp_path / "t" / "notify.txt").write_text("Subject: {{ nope }}\n")  # not rendered yet
    errors = store.reload()
    assert errors and store.current is good
    # the kept set is the one checked at start: neither edit reaches a mail
    assert store.current.render("ack", **SAMPLE_CONTEXT).subject == subject
    assert store.current.render("notify", **SAMPLE_CONTEXT).subject.startswith("New ticket")
    (tmp_path / "t" / "ack.txt").write_text("Subject: Thanks\n\nGot it.\n")
    shutil.copy(TEMPLATES / "notify.txt", tmp_path / "t" / "notify.txt")
    assert store.reload() == []
    assert store.current is not good
    assert store.current.render("ack", **SAMPLE_CONTEXT).subject == "Thanks"
