"""Outbound flows through the real pipeline on SQLite: acks, notifications, agent
replies and commands, spoofing, bounces, the Sent folder. Outbox rows are read back
and parsed; delivery itself is covered by test_outbox and test_e2e_mail."""

from __future__ import annotations

import base64
import email.policy
import email.utils
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mailflow_kit import (
    SECRET,
    SUPPORT,
    TEMPLATES,
    Desk,
    body_text,
    dsn,
    mail,
    make_desk,
    reply_to_notification,
)
from servers.smtp import SmtpServer

from inboxd.core.threadindex import decode_thread_index, thread_index_root
from inboxd.core.tokens import (
    make_reply_token,
    ticket_from_message_id,
    token_from_address,
    verify_reply_token,
)
from inboxd.db import messages
from inboxd.ingest.sink import FetchedMail


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, url=db_url)


def addr(value: object) -> str:
    return email.utils.parseaddr(str(value))[1]


def open_ticket(desk: Desk, **kw: object) -> int:
    out = desk.deliver(mail(**kw))  # type: ignore[arg-type]
    assert out.status == "stored" and out.new_ticket
    assert out.ticket_id is not None
    return out.ticket_id


def notification_for(desk: Desk, agent: str, index: int = -1):  # type: ignore[no-untyped-def]
    mails = [m for m in desk.outbox_mails("notify") if addr(m["To"]) == agent]
    assert mails, f"no notification to {agent}"
    return mails[index]


# --- acknowledgement -----------------------------------------------------------------------


def test_new_ticket_is_acknowledged_with_threading_and_loop_headers(desk: Desk) -> None:
    tid = open_ticket(desk)
    [row] = desk.outbox("ack")
    assert row["rcpts"] == ["carol@customer.example"]
    [ack] = desk.outbox_mails("ack")
    assert ack["In-Reply-To"] == "<c1@customer.example>"
    assert ack["References"] == "<c1@customer.example>"
    assert ack["Subject"] == "Re: [#1] Printer broken"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert addr(ack["From"]) == SUPPORT
    assert ticket_from_message_id(SECRET, str(ack["Message-ID"]).strip("<>")) == tid
    assert "opened ticket #1" in body_text(ack)
    assert desk.ticket(tid)["acknowledged"] is True
    with desk.engine.connect() as conn:
        from inboxd.db import outbox_queries as q

        assert [r["message_id"] for r in q.list_rows(conn) if r["kind"] == "ack"]
    assert "acknowledged" in desk.event_kinds(tid)


def test_ack_goes_out_with_a_null_return_path(desk: Desk) -> None:
    open_ticket(desk)
    from sqlalchemy import select

    from inboxd.db.tables import Outbox

    table = Outbox.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        kinds: dict[str, str] = {
            k: f for k, f in conn.execute(select(table.c.kind, table.c.mail_from))
        }
    assert kinds["ack"] == ""
    assert kinds["notify"].startswith("support+1-0-")


def test_customer_follow_up_gets_no_second_ack_but_a_notification(desk: Desk) -> None:
    tid = open_ticket(desk)
    [ack] = desk.outbox_mails("ack")
    out = desk.deliver(
        mail(
            subject="Re: [#1] Printer broken",
            msgid="c2@customer.example",
            in_reply_to=str(ack["Message-ID"]).strip("<>"),
            body="Also the scanner.\n",
        )
    )
    assert out.ticket_id == tid and not out.new_ticket
    assert len(desk.outbox("ack")) == 1
    latest = notification_for(desk, "alice@help.example")
    assert latest["Subject"] == "[#1] Customer replied: Printer broken"
    assert "> Also the scanner." in body_text(latest)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("Auto-Submitted", "auto-replied")], "auto-submitted"),
        ([("Precedence", "bulk")], "precedence"),
        ([("List-Id", "<news.lists.example>")], "list-id"),
        ([("X-Auto-Response-Suppress", "All")], "x-auto-response-suppress"),
        ([("Return-Path", "<>")], "empty return-path"),
    ],
)
def test_machine_mail_gets_no_ack(desk: Desk, headers: list[tuple[str, str]], reason: str) -> None:
    out = desk.deliver(mail(headers=headers))
    assert out.ticket_id is not None
    assert desk.outbox("ack") == []
    if "ack_skipped" in desk.event_kinds(out.ticket_id):
        [(_, _, data)] = [e for e in desk.events(out.ticket_id) if e[1] == "ack_skipped"]
        assert data["reason"].startswith(reason)


def test_noreply_and_our_own_address_get_no_ack(desk: Desk) -> None:
    desk.deliver(mail(sender="noreply@shop.example", msgid="n1@shop.example"))
    desk.deliver(mail(sender=SUPPORT, msgid="self1@help.example", subject="Loop?"))
    assert desk.outbox("ack") == []


def test_hourly_cap_per_sender(desk: Desk) -> None:
    for n in range(5):
        desk.deliver(mail(msgid=f"c{n}@customer.example", subject=f"Problem {n}"))
    assert len(desk.outbox("ack")) == 3
    desk.clock.advance(hours=1, seconds=1)
    desk.deliver(mail(msgid="later@customer.example", subject="Next hour"))
    assert len(desk.outbox("ack")) == 4


def test_acknowledge_off_unless_a_rule_asks(tmp_path: Path) -> None:
    rules = """
version: 1
teams:
  frontline:
    agents:
      - {name: alice, email: alice@help.example}
rules:
  - name: vip-ack
    when: {from: ["*@vip.example"]}
    then: {auto_reply: ack}
  - name: default
    then: {team: frontline}
"""
    desk = make_desk(tmp_path, rules=rules, acknowledge=False)
    desk.deliver(mail())
    assert desk.outbox("ack") == []
    desk.deliver(mail(sender="boss@vip.example", msgid="v1@vip.example"))
    assert [r["rcpts"] for r in desk.outbox("ack")] == [["boss@vip.example"]]


NO_AGENTS = """
version: 1
rules:
  - name: vip-ack
    when: {from: ["*@vip.example"]}
    then: {auto_reply: ack}
"""


def test_no_ack_and_no_agents_sends_nothing_and_reads_no_ticket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Store-only: with acknowledgements off and nobody to notify, the reactor
    reads nothing (not even the thread it would answer in); a rule's auto_reply
    still acknowledges."""
    desk = make_desk(tmp_path, rules=NO_AGENTS, acknowledge=False)
    reads: list[int] = []
    real = messages.first_message_head
    monkeypatch.setattr(
        messages, "first_message_head", lambda db, tid: reads.append(tid) or real(db, tid)
    )
    desk.deliver(mail())
    desk.deliver(mail(msgid="m2@customer.example", subject="Re: Printer broken"))
    assert desk.outbox() == []
    assert reads == []
    desk.deliver(mail(sender="boss@vip.example", msgid="v1@vip.example"))
    assert [r["rcpts"] for r in desk.outbox("ack")] == [["boss@vip.example"]]
    assert desk.outbox("notify") == []
    assert reads == []  # the ack of a new ticket threads under the mail itself


def test_ack_off_with_agents_in_a_team_still_notifies(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, acknowledge=False)
    desk.deliver(mail())
    assert desk.outbox("ack") == []
    assert sorted(r["rcpts"][0] for r in desk.outbox("notify")) == [
        "alice@help.example",
        "bob@help.example",
    ]


def test_two_desks_acknowledging_each_other_stop(tmp_path: Path) -> None:
    """Autoresponder duel: desk A's ack reaches desk B (as a new mail) and so on."""
    a = make_desk(tmp_path / "a")
    b = make_desk(tmp_path / "b")
    (tmp_path / "a").mkdir(exist_ok=True)
    raw = mail(sender="Helpdesk B <helpdesk@b.example>", msgid="start@b.example")
    sides = [a, b]
    sent = 0
    for turn in range(20):
        desk = sides[turn % 2]
        before = len(desk.outbox("ack"))
        desk.deliver(raw)
        acks = desk.outbox_mails("ack")
        if len(acks) == before:
            break
        sent += 1
        # the other desk receives this ack as mail addressed to its support address
        reply = acks[-1]
        reply.replace_header("To", "helpdesk@b.example" if turn % 2 == 0 else SUPPORT)
        raw = reply.as_bytes()
    assert sent == 1


# --- notifications -------------------------------------------------------------------------


def test_team_is_notified_from_a_token_address(desk: Desk) -> None:
    tid = open_ticket(desk)
    rows = desk.outbox("notify")
    assert sorted(r["rcpts"][0] for r in rows) == ["alice@help.example", "bob@help.example"]
    note = notification_for(desk, "alice@help.example")
    sender = addr(note["From"])
    assert addr(note["Reply-To"]) == sender
    token = verify_reply_token(SECRET, token_from_address(sender, "support") or "")
    assert token is not None and token.ticket_id == tid and token.agent_id != 0
    assert note["Subject"] == "[#1] New ticket: Printer broken"
    assert "Carol Customer via Example Support" in str(note["From"])
    assert note["Auto-Submitted"] == "auto-generated"
    assert note["X-Auto-Response-Suppress"]
    assert "> the printer on floor 3 shows E42." in body_text(note)
    # the agent's client threads it with the ticket; Outlook too (same Thread-Index root)
    ack = desk.outbox_mails("ack")[0]
    ti_ack = decode_thread_index(str(ack["Thread-Index"]))
    ti_note = decode_thread_index(str(note["Thread-Index"]))
    assert ti_ack is not None and ti_note is not None and ti_ack.guid == ti_note.guid


@pytest.mark.parametrize("filler", [0, 200], ids=["short-head", "head-over-8k"])
def test_a_follow_up_in_an_imap_batch_keeps_the_customers_outlook_thread(
    desk: Desk, filler: int
) -> None:
    """The batch's thread lookup reads the ticket's first mail with it: its Message-ID
    and header block (a block longer than that read is read whole), where the
    customer's Thread-Index is. The notification of a follow-up stored in an IMAP
    batch carries that conversation, as one delivered alone does."""
    outlook = base64.b64encode(
        thread_index_root("outlook-root@customer.example", datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    ).decode()
    padding = [(f"X-Relay-{n}", "r" * 60) for n in range(filler)]
    open_ticket(desk, headers=[*padding, ("Thread-Index", outlook)])
    follow_up = mail(
        subject="Re: Printer broken", msgid="c2@customer.example", in_reply_to="c1@customer.example"
    )
    desk.pipeline.store_batch("support", "INBOX", 1, [FetchedMail(1, follow_up)])
    notes = [m for m in desk.outbox_mails("notify") if addr(m["To"]) == "alice@help.example"]
    assert len(notes) == 2
    customer = decode_thread_index(outlook)
    for note in notes:
        ours = decode_thread_index(str(note["Thread-Index"]))
        assert customer is not None and ours is not None
        assert ours.guid == customer.guid


def test_assignee_alone_is_notified(tmp_path: Path) -> None:
    rules = """
version: 1
teams:
  frontline:
    agents:
      - {name: alice, email: alice@help.example}
      - {name: bob, email: bob@help.example}
rules:
  - name: default
    then: {team: frontline, assignee: bob}
"""
    desk = make_desk(tmp_path, rules=rules)
    open_ticket(desk)
    assert [r["rcpts"] for r in desk.outbox("notify")] == [["bob@help.example"]]


def test_notification_html_is_sanitized(desk: Desk) -> None:
    raw = (
        b"From: Carol <carol@customer.example>\r\nTo: support@help.example\r\n"
        b"Subject: Html\r\nMessage-ID: <h1@customer.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/html; charset="utf-8"\r\n\r\n'
        b'<p>Hi</p><script>steal()</script><img src="https://track.example/p.gif">\r\n'
    )
    desk.deliver(raw)
    note = notification_for(desk, "alice@help.example")
    html_part = note.get_body(("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert "<p>Hi</p>" in html
    assert "steal" not in html and "track.example" not in html


# --- agent replies and commands --------------------------------------------------------------


def test_agent_reply_is_relayed_and_commands_run(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    out = desk.deliver(
        reply_to_notification(note, body="#assign bob\n#tag printer\n\nHello Carol,\nfixed.\n")
    )
    assert out.ticket_id == tid and out.matched_by == "token"
    ticket = desk.ticket(tid)
    assert ticket["assignee"] == "bob"
    assert ticket["tags"] == ["printer"]
    assert ticket["status"] == "open"
    [relay] = desk.outbox_mails("reply")
    assert addr(relay["To"]) == "carol@customer.example"
    assert addr(relay["From"]) == SUPPORT
    assert email.utils.parseaddr(str(relay["From"]))[0] == "Alice Agent"
    assert relay["In-Reply-To"] == "<c1@customer.example>"
    assert relay["Subject"] == "Re: [#1] Printer broken"
    assert relay["Auto-Submitted"] is None
    text = body_text(relay)
    assert text.startswith("Hello Carol,\nfixed.")
    assert "#assign" not in text and "#tag" not in text
    assert "New ticket" not in text  # the quoted notification stayed behind
    assert relay.get_body(("html",)) is not None
    events = desk.events(tid)
    reply_events = [d for _, k, d in events if k == "agent_reply"]
    assert reply_events and reply_events[0]["first_response"] is True
    assert ("agent:alice", "assigned", {"to": "bob"}) in events


def test_relay_goes_to_requester_and_customer_cc_only(desk: Desk) -> None:
    open_ticket(desk, cc="Dave <dave@customer.example>, Alice Agent <alice@help.example>")
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="Answer for both.\n"))
    [row] = desk.outbox("reply")
    assert row["rcpts"] == ["carol@customer.example", "dave@customer.example"]
    [relay] = desk.outbox_mails("reply")
    assert addr(relay["Cc"]) == "dave@customer.example"


def test_agent_attachments_are_relayed(desk: Desk) -> None:
    open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    plain = reply_to_notification(note, body="See attached.\n").decode()
    head, _, body = plain.partition("\r\n\r\n")
    head = head.replace(
        'Content-Type: text/plain; charset="utf-8"',
        'Content-Type: multipart/mixed; boundary="b1"',
    )
    raw = (
        f"{head}\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        "--b1\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="manual.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b1--\r\n"
    ).encode()
    desk.deliver(raw)
    [relay] = desk.outbox_mails("reply")
    [att] = list(relay.iter_attachments())
    assert att.get_filename() == "manual.pdf"
    assert att.get_content() == b"%PDF-1.4"


def test_note_is_never_sent_to_the_customer(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="#note\nCustomer is on the phone list.\n"))
    assert desk.outbox("reply") == []
    [ack] = desk.outbox_mails("note_ack")
    assert addr(ack["To"]) == "alice@help.example"
    assert "note" in desk.event_kinds(tid)
    from sqlalchemy import select

    from inboxd.db.tables import Message

    table = Message.__table__  # type: ignore[attr-defined]
    with desk.engine.connect() as conn:
        directions = [r[0] for r in conn.execute(select(table.c.direction).order_by(table.c.id))]
    assert directions == ["in", "note"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("#clsoe\n\nDone!", "unknown command #clsoe"),
        ("#assign nobody\n\nDone!", "#assign nobody: no agent or team"),
        ("#merge 999\n\nDone!", "#merge 999: no such ticket"),
        ("#canned nosuch\n\nDone!", "#canned nosuch: no such saved response"),
        ("#close\n#open\n\nDone!", "conflicting status commands"),
    ],
)
def test_bad_commands_execute_nothing_and_explain(desk: Desk, body: str, error: str) -> None:
    tid = open_ticket(desk)
    before = desk.ticket(tid)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body=body))
    assert desk.outbox("reply") == []
    after = desk.ticket(tid)
    for key in ("status", "assignee", "priority", "tags", "merged_into"):
        assert after[key] == before[key]
    [result] = desk.outbox_mails("command_result")
    assert addr(result["To"]) == "alice@help.example"
    assert error in body_text(result)
    assert result["Auto-Submitted"] == "auto-replied"


def test_commands_only_are_confirmed(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="#close\n#priority high\n"))
    ticket = desk.ticket(tid)
    assert (ticket["status"], ticket["priority"]) == ("closed", "high")
    assert desk.outbox("reply") == []
    [result] = desk.outbox_mails("command_result")
    assert "#close: status is now closed" in body_text(result)


def test_canned_response_then_agent_text(desk: Desk) -> None:
    open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="#canned refund\n\nPS: sorry again.\n"))
    [relay] = desk.outbox_mails("reply")
    text = body_text(relay)
    assert text.startswith("Hello Carol Customer,\n\nwe are sorry for the trouble.")
    assert "[#1] in the subject" in text
    assert text.index("refund") < text.index("PS: sorry again.")


def test_merge_folds_the_ticket_and_later_mail_follows(desk: Desk) -> None:
    first = open_ticket(desk)
    second = open_ticket(desk, msgid="other@customer.example", subject="Same printer again")
    note = notification_for(desk, "alice@help.example", index=0)  # about the first ticket
    desk.deliver(reply_to_notification(note, body=f"#merge {second}\n"))
    assert desk.ticket(first)["merged_into"] == second
    assert desk.ticket(first)["status"] == "merged"
    [ack1, _] = desk.outbox_mails("ack")
    later = desk.deliver(
        mail(
            msgid="c3@customer.example",
            subject="Re: [#1] Printer broken",
            in_reply_to=str(ack1["Message-ID"]).strip("<>"),
        )
    )
    assert later.ticket_id == second


# --- spoofing ---------------------------------------------------------------------------------


def test_forged_agent_sender_without_token_executes_nothing(desk: Desk) -> None:
    tid = open_ticket(desk)
    [ack] = desk.outbox_mails("ack")
    out = desk.deliver(
        mail(
            sender="Alice Agent <alice@help.example>",
            msgid="forged1@evil.example",
            subject="Re: [#1] Printer broken",
            in_reply_to=str(ack["Message-ID"]).strip("<>"),
            body="#close\n#assign bob\n\nplease close\n",
        )
    )
    assert out.ticket_id == tid and out.matched_by != "token"
    ticket = desk.ticket(tid)
    assert ticket["status"] != "closed" and ticket["assignee"] is None
    assert desk.outbox("reply") == [] and desk.outbox("command_result") == []


def test_forged_sender_with_another_agents_token_executes_nothing(desk: Desk) -> None:
    tid = open_ticket(desk)
    bobs = notification_for(desk, "bob@help.example")
    desk.deliver(
        reply_to_notification(
            bobs, sender="Alice Agent <alice@help.example>", body="#close\n\nBye\n"
        )
    )
    assert desk.ticket(tid)["status"] != "closed"
    assert desk.outbox("reply") == []


def test_customer_with_a_forwarded_token_executes_nothing(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(
        reply_to_notification(
            note, sender="Carol <carol@customer.example>", body="#close\n\nthanks\n"
        )
    )
    assert desk.ticket(tid)["status"] != "closed"
    assert desk.outbox("reply") == []


def test_forged_token_for_another_ticket_executes_nothing(desk: Desk) -> None:
    tid = open_ticket(desk)
    fake = make_reply_token(b"not-our-secret", tid, 1)
    out = desk.deliver(
        mail(
            sender="Alice Agent <alice@help.example>",
            to=f"support+{fake}@help.example",
            msgid="forged2@evil.example",
            body="#close\n\nx\n",
        )
    )
    assert out.matched_by != "token"
    assert desk.ticket(tid)["status"] != "closed"


def test_agent_out_of_office_is_not_relayed(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    raw = reply_to_notification(note, body="I am out of office until Monday.\n", quote=False)
    raw = raw.replace(b"MIME-Version", b"Auto-Submitted: auto-replied\r\nMIME-Version", 1)
    out = desk.deliver(raw)
    assert out.ticket_id == tid
    assert desk.outbox("reply") == []


def test_trusted_authentication_results_required_when_configured(tmp_path: Path) -> None:
    from inboxd.flows.agent_reply import AgentReplyInterceptor

    desk = make_desk(tmp_path)
    strict = AgentReplyInterceptor(desk.flow, trusted_authserv_ids=("mx.help.example",))
    desk.pipeline.ctx = desk.pipeline.ctx.__class__(
        **{**desk.pipeline.ctx.__dict__, "interceptors": (strict,)}
    )
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    unsigned = reply_to_notification(note, body="#close\n\nbye\n", msgid="u1@help.example")
    desk.deliver(unsigned)
    assert desk.ticket(tid)["status"] != "closed"
    signed = reply_to_notification(note, body="#close\n\nbye\n", msgid="s1@help.example")
    signed = (
        b"Authentication-Results: mx.help.example; dkim=pass header.d=help.example\r\n" + signed
    )
    desk.deliver(signed)
    assert desk.ticket(tid)["status"] == "closed"


# --- bounces -----------------------------------------------------------------------------


def test_bounce_attaches_marks_failed_and_alerts_once(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="Answer.\n"))
    [relay_row] = desk.outbox("reply")
    tickets_before = desk.ticket(tid)
    verp = f"support+{make_reply_token(SECRET, tid, 0)}@help.example"  # our return path
    out = desk.deliver(dsn(original_id=relay_row["message_id"], to=verp))
    assert out.ticket_id == tid and not out.new_ticket
    assert desk.outbox("reply")[0]["status"] == "failed"
    alerts = desk.outbox_mails("bounce_alert")
    assert sorted(addr(m["To"]) for m in alerts) == ["alice@help.example", "bob@help.example"]
    assert "5.1.1" in body_text(alerts[0])
    # a second report about the same mail: recorded, no second alert
    desk.deliver(
        dsn(original_id=relay_row["message_id"], msgid="dsn2@mx.customer.example", to=verp)
    )
    assert len(desk.outbox_mails("bounce_alert")) == 2
    assert desk.event_kinds(tid).count("bounce") == 2
    assert desk.ticket(tid)["status"] == tickets_before["status"]
    assert len(desk.outbox("ack")) == 1  # the bounce got no acknowledgement
    assert len(desk.outbox("notify")) == 2  # and notified nobody


def test_bounce_found_by_return_path_token(desk: Desk) -> None:
    tid = open_ticket(desk)
    token = make_reply_token(SECRET, tid, 0)
    raw = dsn(original_id="unknown@elsewhere.example", to=f"support+{token}@help.example")
    out = desk.deliver(raw)
    assert out.ticket_id == tid and out.matched_by == "token"


def test_bounce_of_nothing_we_sent_is_quarantined(desk: Desk) -> None:
    out = desk.deliver(dsn(original_id="random@spam.example"))
    assert out.status == "quarantined"
    assert out.ticket_id is None


def test_delayed_dsn_is_recorded_without_failing_the_mail(desk: Desk) -> None:
    tid = open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="Answer.\n"))
    [row] = desk.outbox("reply")
    desk.deliver(dsn(original_id=row["message_id"], status="4.4.1", action="delayed"))
    assert desk.outbox("reply")[0]["status"] == "queued"
    assert desk.outbox_mails("bounce_alert") == []
    assert "bounce" in desk.event_kinds(tid)


# --- the Sent folder of a shared mailbox ---------------------------------------------------


def test_sent_folder_reply_is_recorded_as_agent_reply(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, sent_folders={"support": "Sent"})
    tid = open_ticket(desk)
    outbox_before = len(desk.outbox())
    sent = mail(
        sender=f"Support <{SUPPORT}>",
        to="carol@customer.example",
        subject="Re: Printer broken",
        msgid="sent1@help.example",
        in_reply_to="c1@customer.example",
        references=["c1@customer.example"],
        body="We are on it.\n",
    )
    out = desk.deliver(sent, folder="Sent")
    assert out.ticket_id == tid
    assert len(desk.outbox()) == outbox_before  # nothing sent, nothing acknowledged
    [data] = [d for _, k, d in desk.events(tid) if k == "agent_reply"]
    assert data["via"] == "sent_folder" and data["first_response"] is True
    assert desk.ticket(tid)["status"] == "open"
    unrelated = mail(sender=SUPPORT, to="x@y.example", msgid="sent2@help.example")
    assert desk.deliver(unrelated, folder="Sent").status == "skipped"


# --- hand-over ------------------------------------------------------------------------------


def test_assign_notifies_the_new_assignee_who_can_answer_from_it(desk: Desk) -> None:
    tid = open_ticket(desk)
    before = len(desk.outbox("notify"))
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="#assign bob\n"))
    rows = desk.outbox("notify")[before:]
    assert [r["rcpts"] for r in rows] == [["bob@help.example"]]  # not alice, who did it
    handed = notification_for(desk, "bob@help.example")
    assert handed["Subject"] == "[#1] Assigned to you: Printer broken"
    text = body_text(handed)
    assert "Alice Agent assigned ticket #1 to you." in text
    assert "> the printer on floor 3 shows E42." in text  # the customer's mail, quoted
    assert handed["In-Reply-To"] == "<c1@customer.example>"
    bob_address = token_from_address(addr(handed["Reply-To"]), "support") or ""
    token = verify_reply_token(SECRET, bob_address)
    assert token is not None and token.ticket_id == tid
    events = desk.events(tid)
    assert ("system", "notified", {"agents": ["bob"], "event": "assigned"}) in events
    # bob answers from the hand-over mail: it is relayed as his reply
    desk.deliver(
        reply_to_notification(
            handed, sender="Bob <bob@help.example>", body="Hi Carol, bob here.\n", msgid="b1@x"
        )
    )
    [relay] = desk.outbox_mails("reply")
    assert addr(relay["To"]) == "carol@customer.example"
    assert body_text(relay).startswith("Hi Carol, bob here.")
    assert ("agent:bob", "agent_reply") in [(a, k) for a, k, _ in desk.events(tid)]


def test_assigning_to_oneself_or_to_the_same_owner_sends_nothing(desk: Desk) -> None:
    open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="#assign alice\n"))
    before = len(desk.outbox("notify"))
    desk.deliver(reply_to_notification(note, body="#assign alice\n#priority high\n", msgid="a2@x"))
    assert len(desk.outbox("notify")) == before


def test_assign_to_a_team_notifies_its_members_but_not_the_mover(tmp_path: Path) -> None:
    rules = """
version: 1
teams:
  frontline:
    agents:
      - {name: alice, email: alice@help.example}
  billing:
    agents:
      - {name: alice, email: alice@help.example}
      - {name: bob, email: bob@help.example}
      - {name: dora, email: dora@help.example}
rules:
  - name: default
    then: {team: frontline, assignee: alice}
"""
    desk = make_desk(tmp_path, rules=rules)
    open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    desk.deliver(reply_to_notification(note, body="#assign billing\n"))
    handed = [r["rcpts"][0] for r in desk.outbox("notify")][1:]
    assert sorted(handed) == ["bob@help.example", "dora@help.example"]
    assert "assigned ticket #1 to team billing" in body_text(
        notification_for(desk, "dora@help.example")
    )


def test_assign_and_close_together_sends_no_hand_over(desk: Desk) -> None:
    open_ticket(desk)
    note = notification_for(desk, "alice@help.example")
    before = len(desk.outbox("notify"))
    desk.deliver(reply_to_notification(note, body="#assign bob\n#close\n"))
    assert len(desk.outbox("notify")) == before


# --- internationalised customer addresses ------------------------------------------------------

JOERG = "Jörg Müller <jörg@bücher.example>"
JOERG_ENVELOPE = "jörg@xn--bcher-kva.example"


def test_customer_with_a_utf8_address_gets_ack_and_reply_over_smtputf8(tmp_path: Path) -> None:
    relay = SmtpServer().start()  # aiosmtpd offers SMTPUTF8
    try:
        desk = make_desk(tmp_path, smtp_port=relay.port)
        tid = open_ticket(desk, sender=JOERG)
        assert [r["rcpts"] for r in desk.outbox("ack")] == [[JOERG_ENVELOPE]]
        note = notification_for(desk, "alice@help.example")
        desk.deliver(reply_to_notification(note, body="Hallo Jörg, erledigt.\n"))
        assert desk.drain().run_once().sent == 4  # ack, two notifications, the reply
        to_joerg = [c for c in relay.captured if c.rcpt_tos == [JOERG_ENVELOPE]]
        assert len(to_joerg) == 2 and all("SMTPUTF8" in c.mail_options for c in to_joerg)
        # RFC 6532 headers are UTF-8 (the email package only reads them from str)
        reply = email.message_from_string(to_joerg[1].data.decode(), policy=email.policy.SMTPUTF8)
        assert reply["To"].addresses[0].username == "jörg"
        assert body_text(reply).startswith("Hallo Jörg, erledigt.")
        to_alice = next(c for c in relay.captured if c.rcpt_tos == ["alice@help.example"])
        assert "SMTPUTF8" not in to_alice.mail_options
        assert desk.ticket(tid)["requester"] == "jörg@bücher.example"
    finally:
        relay.stop()


def test_relay_without_smtputf8_fails_that_mail_for_good_and_no_other(tmp_path: Path) -> None:
    relay = SmtpServer(smtputf8=False).start()
    try:
        desk = make_desk(tmp_path, smtp_port=relay.port)
        tid = open_ticket(desk, sender=JOERG)
        report = desk.drain().run_once()
        assert (report.sent, report.failed, report.retried) == (2, 1, 0)  # notifications go
        [ack] = desk.outbox("ack")
        assert ack["status"] == "failed" and "SMTPUTF8" in ack["last_error"]
        assert desk.ticket(tid)["status"] == "new"
    finally:
        relay.stop()


def test_customer_address_no_mail_can_reach_still_makes_a_ticket(desk: Desk) -> None:
    """Before, the acknowledgement's compose error failed the whole mail: quarantined."""
    tid = open_ticket(desk, sender="Bob <bob@[192.0.2.1]>")
    assert desk.outbox("ack") == []
    [(_, _, data)] = [e for e in desk.events(tid) if e[1] == "ack_skipped"]
    assert "not a usable address" in data["reason"]
    assert len(desk.outbox("notify")) == 2  # the agents still hear of it


def test_a_mail_the_drain_cannot_write_fails_for_good_and_says_why(tmp_path: Path) -> None:
    """Notifications are written by the drain: a template missing by then fails that
    mail (an event on the ticket), never the stored mail or the other mails."""
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    relay = SmtpServer().start()
    try:
        desk = make_desk(tmp_path, smtp_port=relay.port, templates=templates)
        tid = open_ticket(desk)
        assert len(desk.outbox("notify")) == 2  # queued: nothing was rendered yet
        (templates / "notify.txt").unlink()
        report = desk.drain().run_once()
        assert (report.sent, report.failed) == (1, 2)  # the ack went
        for row in desk.outbox("notify"):
            assert row["status"] == "failed"
            assert "cannot write the mail: template notify.txt" in row["last_error"]
        assert desk.event_kinds(tid).count("delivery_failed") == 2
        assert [c.rcpt_tos for c in relay.captured] == [["carol@customer.example"]]
    finally:
        relay.stop()


def test_a_batch_logs_its_queued_mail_in_its_summary_and_each_at_debug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from inboxd.ingest.sink import FetchedMail

    desk = make_desk(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="inboxd"):
        desk.pipeline.store_batch("support", "INBOX", 1, [FetchedMail(1, mail())])
        desk.deliver(mail(msgid="c2@customer.example", subject="Another printer"))
    queued = [r for r in caplog.records if r.getMessage().startswith("queued kind=")]
    # the batch's ack and two notifications at DEBUG, the single delivery's at INFO
    assert [r.levelno for r in queued] == [logging.DEBUG] * 3 + [logging.INFO] * 3
    [summary] = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("ingest batch")
    ]
    assert summary.endswith("queued=3")
