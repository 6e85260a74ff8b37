"""Bounce recognition: RFC 3464 DSNs and the common non-RFC formats."""

from __future__ import annotations

from inboxd.core.model import MessageKind
from inboxd.core.parse import parse_message


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


POSTFIX_DSN = """\
Return-Path: <>
Received: by mx.example.com (Postfix) id 1234
Date: Tue,  2 Jan 2024 10:00:05 +0100 (CET)
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: support@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="ABC/mx.example.com"
Message-Id: <20240102090005.AAA@mx.example.com>

This is a MIME-encapsulated message.

--ABC/mx.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@customer.example>: host mx.customer.example said: 550 5.1.1 <nobody@customer.example>:
    Recipient address rejected: User unknown

--ABC/mx.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
X-Postfix-Queue-ID: 1234
Arrival-Date: Tue,  2 Jan 2024 10:00:04 +0100 (CET)

Final-Recipient: rfc822; nobody@customer.example
Original-Recipient: rfc822;nobody@customer.example
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.customer.example
Diagnostic-Code: smtp; 550 5.1.1 <nobody@customer.example>: Recipient address
    rejected: User unknown

--ABC/mx.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Support <support@example.com>
To: nobody@customer.example
Subject: [#123] Your request
Message-ID: <ticket-123.abc@support.example.com>

--ABC/mx.example.com--
"""


def test_postfix_dsn() -> None:
    m = parse_message(crlf(POSTFIX_DSN))
    assert m.kind is MessageKind.BOUNCE
    b = m.bounce
    assert b is not None
    assert b.original_message_id == "ticket-123.abc@support.example.com"
    assert b.failed_recipients == ("nobody@customer.example",)
    assert b.status == "5.1.1"
    assert b.action == "failed"
    assert b.permanent
    assert "User unknown" in b.diagnostic
    assert m.auto.is_mailer_daemon and m.auto.return_path_empty


EXCHANGE_DSN = """\
From: Microsoft Outlook <postmaster@contoso.example>
To: <support@example.com>
Subject: Undeliverable: Re: Your order
Date: Tue, 2 Jan 2024 09:00:00 +0000
Message-ID: <ex-dsn-1@contoso.example>
Content-Type: multipart/report; report-type="delivery-status"; boundary="b1"
MIME-Version: 1.0

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

bob@contoso.example
The email address you entered couldn't be found.

--b2
Content-Type: text/html; charset="us-ascii"

<html><body><b>Delivery has failed to these recipients or groups:</b></body></html>
--b2--

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns;EX01.contoso.example
Received-From-MTA: dns;mail.example.com

Final-Recipient: rfc822;bob@contoso.example
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found

--b1
Content-Type: message/rfc822

From: Support <support@example.com>
To: <bob@contoso.example>
Subject: Re: Your order
Message-ID: <Out.42@Support.Example.com>
Content-Type: text/plain

original body
--b1--
"""


def test_exchange_dsn_with_message_rfc822() -> None:
    m = parse_message(crlf(EXCHANGE_DSN))
    assert m.kind is MessageKind.BOUNCE
    assert m.bounce is not None
    assert m.bounce.original_message_id == "Out.42@Support.Example.com"
    assert m.bounce.failed_recipients == ("bob@contoso.example",)
    assert m.bounce.status == "5.1.10"
    assert m.bounce.diagnostic.startswith("550 5.1.10")
    assert "Delivery has failed" in m.text


def test_delayed_dsn_is_not_permanent() -> None:
    raw = (
        POSTFIX_DSN.replace("Action: failed", "Action: delayed")
        .replace("Status: 5.1.1", "Status: 4.4.1")
        .replace("Undelivered Mail Returned to Sender", "Delayed Mail (still being retried)")
    )
    m = parse_message(crlf(raw))
    assert m.kind is MessageKind.BOUNCE
    assert m.bounce is not None
    assert m.bounce.action == "delayed"
    assert not m.bounce.permanent
    assert m.bounce.status == "4.4.1"
    assert m.bounce.failed_recipients == ("nobody@customer.example",)  # named, not failed yet


def test_dsn_without_report_type_param_but_with_status_part() -> None:
    raw = POSTFIX_DSN.replace("report-type=delivery-status;", "")
    m = parse_message(crlf(raw))
    assert m.kind is MessageKind.BOUNCE


QMAIL = """\
Return-Path: <>
From: MAILER-DAEMON@mail.example.net
To: support@example.com
Subject: failure notice
Date: 2 Jan 2024 10:00:00 -0000

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<gone@example.net>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <support@example.com>
From: support@example.com
To: gone@example.net
Subject: [#7] Hello
Message-ID: <q-7@support.example.com>

hello
"""


def test_qmail_bounce() -> None:
    m = parse_message(crlf(QMAIL))
    assert m.kind is MessageKind.BOUNCE
    assert m.bounce is not None
    assert m.bounce.failed_recipients == ("gone@example.net",)
    assert m.bounce.original_message_id == "q-7@support.example.com"
    assert m.bounce.status == "5.1.1"
    assert m.bounce.permanent


EXIM = """\
Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: support@example.com
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: nobody@example.org
Auto-Submitted: auto-replied
Date: Tue, 02 Jan 2024 10:00:00 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  nobody@example.org
    SMTP error from remote mail server after RCPT TO:<nobody@example.org>:
    550 5.1.1 User unknown

------ This is a copy of the message, including all the headers. ------

Message-ID: <exim-orig@support.example.com>
From: support@example.com
Subject: hi

body
"""


def test_exim_bounce() -> None:
    m = parse_message(crlf(EXIM))
    assert m.kind is MessageKind.BOUNCE
    assert m.bounce is not None
    assert m.bounce.failed_recipients == ("nobody@example.org",)
    assert m.bounce.original_message_id == "exim-orig@support.example.com"
    assert m.bounce.permanent


def test_subject_only_bounce_needs_machine_sender() -> None:
    human = "From: Carl <carl@example.net>\nSubject: Undeliverable: my package\n\nWhere is it?\n"
    m = parse_message(crlf(human))
    assert m.kind is MessageKind.NORMAL and m.bounce is None
    daemon = human.replace("Carl <carl@example.net>", "postmaster@example.net")
    m2 = parse_message(crlf(daemon))
    assert m2.kind is MessageKind.BOUNCE
    gmail = (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "Subject: Delivery Status Notification (Delay)\n\n"
        "Delivery to the following recipient has been delayed:\n\n     x@example.org\n"
    )
    m3 = parse_message(crlf(gmail))
    assert m3.bounce is not None and not m3.bounce.permanent and m3.bounce.action == "delayed"


def test_read_receipt_is_not_a_bounce() -> None:
    mdn = """\
From: carl@example.net
Subject: Read: hello
Content-Type: multipart/report; report-type=disposition-notification; boundary="r"

--r
Content-Type: text/plain

Your message was read.
--r
Content-Type: message/disposition-notification

Final-Recipient: rfc822;carl@example.net
Disposition: manual-action/MDN-sent-manually; displayed
--r--
"""
    m = parse_message(crlf(mdn))
    assert m.bounce is None
    assert m.kind is MessageKind.AUTO_REPLY


def test_forwarded_bounce_text_by_a_person_is_not_a_bounce() -> None:
    text = "From: carl@example.net\nSubject: Fwd: Undeliverable: x\n\nWhy did this bounce?\n"
    assert parse_message(crlf(text)).kind is MessageKind.NORMAL


# --- classes added for issue 14 (our own short mails) --------------------------------------


def _mail(headers: str, body: str) -> bytes:
    return crlf(headers.rstrip("\n") + "\n\n" + body)


def test_daemon_bounce_with_a_plain_subject_and_its_address() -> None:
    m = parse_message(_mail(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\nSubject: Mail not sent\n"
        "To: support@example.com",
        "Mail delivery failed.\nThe following recipients did not receive this message:\n"
        "<lost@customer.example>\n\nPlease reply to postmaster@mx.example.net if you feel\n",
    ))
    assert m.kind is MessageKind.BOUNCE and m.bounce is not None
    assert m.bounce.failed_recipients == ("lost@customer.example",)


def test_gateway_bounce_with_an_smtp_transcript() -> None:
    m = parse_message(_mail(
        "From: scanner@gw.example.org\nSubject: Mail could not be delivered",
        "Sent <<< RCPT TO:<ghost@example.org>\nReceived >>> 550 5.1.1 unknown user.\n\n"
        "Unable to deliver message to <ghost@example.org>.\n",
    ))
    assert m.kind is MessageKind.BOUNCE and m.bounce is not None
    assert m.bounce.failed_recipients == ("ghost@example.org",)


def test_parcel_complaint_with_a_bounce_like_subject_is_a_customer_mail() -> None:
    m = parse_message(_mail(
        "From: Dana <dana@example.net>\nSubject: Delivery failure",
        "My parcel could not be delivered, the courier says the address is invalid.\n",
    ))
    assert m.kind is MessageKind.NORMAL and m.bounce is None


def test_vacation_reply_with_an_empty_return_path_is_not_a_bounce() -> None:
    m = parse_message(_mail(
        "Return-Path: <>\nFrom: Eli <eli@example.net>\nSubject: Out of office\n"
        "Auto-Submitted: auto-replied",
        "I am away. Mail sent to this address is not delivered to my phone; back Monday.\n",
    ))
    assert m.bounce is None and m.kind is MessageKind.AUTO_REPLY


def test_daemon_bounce_in_russian() -> None:
    m = parse_message(_mail(
        "From: Mail Delivery System <mailer-daemon@mx.example.ru>\nSubject: Mail failure\n"
        "Auto-Submitted: auto-replied\nContent-Type: text/plain; charset=utf-8",
        "К сожалению, ваше письмо не может быть доставлено получателю:\n"
        "  mailbox nobody@example.ru is unavailable\n",
    ))
    assert m.kind is MessageKind.BOUNCE


def test_bare_delivery_status_without_multipart_report() -> None:
    m = parse_message(_mail(
        "From: mx.example.com\nContent-Type: message/delivery-status",
        "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; <gone@example.org>\n"
        "Action: failed\nStatus: 5.1.1\n",
    ))
    assert m.kind is MessageKind.BOUNCE and m.bounce is not None
    assert m.bounce.failed_recipients == ("gone@example.org",)
    assert m.bounce.permanent


def test_rejection_sent_as_a_disposition_notification_is_a_bounce() -> None:
    raw = _mail(
        "From: Mail Delivery Subsystem <relay@example.com>\nSubject: Rejected mail\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"',
        "--b\nContent-Type: text/plain\n\nYour message to <full@example.com> was automatically "
        "rejected:\nQuota exceeded\n--b\nContent-Type: message/disposition-notification\n\n"
        "Final-Recipient: rfc822; full@example.com\nDisposition: automatic-action/"
        "MDN-sent-automatically; deleted\n--b--\n",
    )
    assert parse_message(raw).kind is MessageKind.BOUNCE


def test_dsn_names_the_address_we_sent_to() -> None:
    """Original-Recipient (our outbox's address) over a rewritten Final-Recipient."""
    raw = POSTFIX_DSN.replace(
        "Final-Recipient: rfc822; nobody@customer.example",
        "Final-Recipient: rfc822; n.body@mailhost.customer.example",
    )
    m = parse_message(crlf(raw))
    assert m.bounce is not None
    assert m.bounce.failed_recipients == ("nobody@customer.example",)
