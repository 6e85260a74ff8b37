"""The parser's fast path (mimesplit.split + _walk_fast + lazy work) must give exactly
what the compat32 path gives, on real, generated and fuzzed mail."""

from __future__ import annotations

import base64
import importlib.util
import quopri
import random
import re
from email.message import Message
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.mailgen import stream

from inboxd.core.mimesplit import delimiters, simple_params, split
from inboxd.core.model import ParsedMessage, ParseError
from inboxd.core.parse import parse_message, parse_message_slow


def _outcome(fn: object, raw: bytes) -> ParsedMessage | tuple[str, str]:
    assert callable(fn)
    try:
        result = fn(raw)
    except ParseError as exc:
        return ("ParseError", exc.reason)
    assert isinstance(result, ParsedMessage)
    return result


def assert_same(raw: bytes) -> None:
    fast, slow = _outcome(parse_message, raw), _outcome(parse_message_slow, raw)
    assert fast == slow, raw[:300]


def _cpython_data() -> list[Path]:
    spec = importlib.util.find_spec("test.test_email")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return sorted(p for p in data.iterdir() if p.is_file()) if data.is_dir() else []


def test_generated_support_mail_same_and_fast_path_taken() -> None:
    mails = list(stream(400, seed=11))
    taken = 0
    for raw in mails:
        assert_same(raw)
        taken += split(raw) is not None
    assert taken == len(mails)  # every generated mail is clean: the fast path must take it


def test_cpython_email_data_same() -> None:
    paths = _cpython_data()
    for path in paths:
        raw = path.read_bytes()
        assert_same(raw)
        assert_same(raw.replace(b"\n", b"\r\n"))


# --- generated MIME with the shapes the fast path must get right or hand over -------------

_CHARSETS = ["utf-8", "UTF-8", '"utf-8"', "iso-8859-1", "windows-1252", "koi8-r", "bogus-cs", ""]
_NAMES = [
    "report.pdf", '"Rechnung März.pdf"', '"a;b.txt"', "winmail.dat", '"C:\\\\tmp\\\\x.doc"',
    "=?utf-8?q?Caf=C3=A9.txt?=", '"<angle>.txt"', "", '"quoted \\"inner\\".txt"',
]
_TEXT = st.lists(
    st.sampled_from([*"abc XYZ\n\r>-:=_é€😀\t", "wrote:", "On Mon X wrote:", "<p>x</p>"]),
    max_size=80,
).map("".join)


@st.composite
def _leaf(draw: st.DrawFn) -> bytes:
    ctype = draw(st.sampled_from([
        "text/plain", "text/html", "TEXT/Plain", "application/pdf", "image/png",
        "application/ms-tnef", "text/calendar", "text", "message/rfc822",
        "multipart/report",
    ]))
    headers: list[str] = []
    params = ""
    charset = draw(st.sampled_from(_CHARSETS))
    if charset:
        params += f"; charset={charset}"
    if draw(st.booleans()):
        params += f"; name={draw(st.sampled_from(_NAMES))}"
    if draw(st.booleans()):
        params += draw(st.sampled_from(["", ";", "; format=flowed", "; x*=utf-8''a%20b", "; bare"]))
    if draw(st.integers(0, 9)):
        headers.append(f"Content-Type: {ctype}{params}")
    disp = draw(st.sampled_from(["", "inline", "attachment", "ATTACHMENT", "inline; x=1"]))
    if disp:
        fname = draw(st.sampled_from([*_NAMES, "utf-8''Rechnung%20M%C3%A4rz.pdf"]))
        key = "filename*" if fname.startswith("utf-8''") else "filename"
        headers.append(f"Content-Disposition: {disp}"
                       + (f"; {key}={fname}" if fname and draw(st.booleans()) else ""))
    if draw(st.booleans()):
        headers.append(f"Content-ID: {draw(st.sampled_from(['<c1@x>', ' <c2> ', '']))}")
    text = draw(_TEXT)
    data = text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")
    cte = draw(
        st.sampled_from(["", "7bit", "8bit", "base64", "quoted-printable", "x-uue", "BASE64"])
    )
    if cte:
        headers.append(f"Content-Transfer-Encoding: {cte}")
    if cte.lower() == "base64":
        body = base64.encodebytes(data)
        if draw(st.integers(0, 5)) == 0:
            body = body[: max(0, len(body) - draw(st.integers(1, 3)))]  # broken padding
    elif cte == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = data
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8", "replace") + body


@st.composite
def _mime(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(_leaf())
    sub = draw(st.sampled_from(["alternative", "mixed", "related", "digest", "report"]))
    boundary = draw(st.sampled_from(["b1", "=_b=2", "x y", "'q'", "b" * 80]))
    quoted = draw(st.booleans())
    children = draw(st.lists(_mime(depth + 1), min_size=0, max_size=3))
    b = boundary.encode()
    body = b"preamble\r\n" if draw(st.booleans()) else b""
    for child in children:
        body += b"--" + b + draw(st.sampled_from([b"\r\n", b"  \r\n", b"\n"])) + child + b"\r\n"
    if draw(st.integers(0, 5)):
        body += b"--" + b + b"--" + draw(st.sampled_from([b"\r\n", b"", b"\r\nepilogue"]))
    value = f'"{boundary}"' if quoted or " " in boundary else boundary
    head = f"Content-Type: multipart/{sub}; boundary={value}\r\n\r\n".encode()
    return head + body


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    top = [
        "From: " + draw(st.sampled_from([
            "a@x.example", '"Doe, J" <j@x.example>', "MAILER-DAEMON@x", "=?utf-8?q?J=C3=BC?= <j@x>",
        ])),
        "Subject: " + draw(st.sampled_from([
            "Re: hello", "Undelivered Mail Returned to Sender", "Out of office", "caf\xe9",
        ])),
        "Message-ID: <m1@x.example>",
        "MIME-Version: 1.0",
    ]
    if draw(st.booleans()):
        top.append("Return-Path: <>")
    top = draw(st.permutations(top))
    head = ("\r\n".join(top) + "\r\n").encode("utf-8", "surrogateescape")
    return head + draw(_mime())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_message())
def test_generated_mime_same(raw: bytes) -> None:
    assert_same(raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_mail_same(data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    raw = bytearray(data.draw(st.sampled_from(_SEEDS)))
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(raw) + 1)
        op = rng.random()
        if op < 0.4:
            del raw[pos : pos + rng.randint(1, 40)]
        elif op < 0.8:
            raw[pos:pos] = rng.choice(
                [b"\r\n", b"\n", b"--", b"=", b"\xff", b";", b'"', b"\r\n\r\n", b"*=", b"\t"]
            )
        elif raw:
            raw[min(pos, len(raw) - 1)] = rng.randrange(256)
    assert_same(bytes(raw))


_SEEDS = [m for i, m in enumerate(stream(60, seed=3)) if i % 3 == 0 or b"multipart" in m]


# --- the building blocks against the stdlib pieces they replace ----------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=60).map(lambda b: b.replace(b"B", b"")),
    st.lists(st.sampled_from([b"\n--B", b"--", b"\r\n", b"\n", b" ", b"\t", b"x", b"\r", b"B"]),
             max_size=30),
)
def test_delimiters_match_the_regex(noise: bytes, pieces: list[bytes]) -> None:
    body = noise + b"".join(pieces)
    regex = re.compile(rb"\n--" + re.escape(b"B") + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    expected = [(m.start(), m.end(), m.group(1) is not None) for m in regex.finditer(body)]
    assert delimiters(body, b"B") == expected


_PARAM_PIECES = st.sampled_from([
    "text/plain", "multipart/mixed", ";", " ", "\n\t", "charset", "CharSet", "=", "utf-8", '"',
    "name", "filename", "boundary", "a b", "<x>", "\\", "*", "'", "x;y", "é", "",
])


@settings(max_examples=800, deadline=None)
@given(st.lists(_PARAM_PIECES, max_size=12))
def test_simple_params_agree_with_message_get_param(pieces: list[str]) -> None:
    value = "".join(pieces)
    params = simple_params(value)
    if params is None:
        return  # not simple: the caller asks a compat32 Message instead
    msg = Message()
    msg.set_raw("Content-Type", value)
    msg.set_raw("Content-Disposition", value)
    for name in ("charset", "name", "filename", "boundary", "format"):
        assert params.get(name) == msg.get_param(name)
    filename = params.get("filename", params.get("name"))
    assert (None if filename is None else filename.strip()) == msg.get_filename()


def test_simple_params_rejects_the_unusual() -> None:
    for value in (
        "text/plain; name*=utf-8''a%20b",
        'text/plain; name="a\\"b"',
        'text/plain; name="a;b"',
        "text/plain; name=<x>",
        "text/plain; flowed",
        "text/plain;; charset=utf-8",
    ):
        assert simple_params(value) is None, value
    assert simple_params('text/plain; charset="UTF-8"; format=flowed;') == {
        "text/plain": "",  # the main value, as compat32 lists it
        "charset": "UTF-8",
        "format": "flowed",
    }


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"a", b"\r\n", b":"]), max_size=20).map(b"".join))
def test_header_end_matches_the_crlf_pattern(data: bytes) -> None:
    from inboxd.core.parse import _HEADER_END

    old = re.compile(rb"\r?\n\r?\n").search(data)
    new = _HEADER_END.search(data)
    assert (old and old.end()) == (new and new.end())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([
            "The Mail System", "DELIVERED", "qmail-send", "Unable to deliver", "x", " ", "\n",
            "Your message could not be delivered", "permanent FATAL", "é", "ſ", "K",
        ]),
        max_size=12,
    ).map("".join)
)
def test_bounce_key_prefilter_agrees(text: str) -> None:
    from inboxd.core import bounce

    low = text[:5000].lower()
    expected = any(k in low for k in bounce._STRONG_KEYS) and bool(
        bounce._STRONG_BODY.search(text[:5000])
    )
    got = bounce.bounce_candidate(subject="", text=text, return_path_empty=False)
    assert got == expected
