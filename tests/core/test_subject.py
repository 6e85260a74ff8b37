"""Subject normalization and ticket tags."""

from __future__ import annotations

import pytest

from inboxd.core.subject import find_ticket_tag, normalize_subject, strip_ticket_tag


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer broken", "printer broken"),
        ("Re: Printer broken", "printer broken"),
        ("RE: RE: Re: re:  Printer   broken", "printer broken"),
        ("Fwd: Printer broken", "printer broken"),
        ("FW: Printer broken", "printer broken"),
        ("AW: WG: Drucker kaputt", "drucker kaputt"),
        ("SV: VS: Skrivaren", "skrivaren"),
        ("Réf. : Imprimante", "imprimante"),
        ("TR: Imprimante", "imprimante"),
        ("Rif: Stampante", "stampante"),
        ("R: Stampante", "stampante"),
        ("Antw: Printer", "printer"),
        ("Odp: Drukarka", "drukarka"),
        ("RE[2]: Printer", "printer"),
        ("Re^3: Printer", "printer"),
        ("Re(2): Printer", "printer"),
        ("RV: Impresora", "impresora"),
        ("ENC: Impressora", "impressora"),
        ("回复：打印机", "打印机"),
        ("Re: [#123] Printer broken", "printer broken"),
        ("[#123] Re: Printer broken", "printer broken"),
        ("Re: [support-list] Printer broken", "printer broken"),
        ("[list] Re: [#9] AW: Printer", "printer"),
        ("Printer broken (fwd)", "printer broken"),
        ("Straße ÜBER", "strasse über"),
        ("Re:", ""),
        ("", ""),
        # Words that merely start like a prefix stay.
        ("Review: quarterly numbers", "review: quarterly numbers"),
        ("Fwdx: test", "fwdx: test"),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


def test_find_ticket_tag() -> None:
    assert find_ticket_tag("Re: [#123] Printer") == 123
    assert find_ticket_tag("no tag") is None
    assert find_ticket_tag("[#abc]") is None
    assert find_ticket_tag("[ACME-77] x", r"\[ACME-(\d+)\]") == 77
    assert find_ticket_tag("x", r"(unclosed") is None


def test_strip_ticket_tag_configurable() -> None:
    assert strip_ticket_tag("[ACME-77] x", r"\[ACME-(\d+)\]").strip() == "x"
    assert normalize_subject("Re: [ACME-77] Printer", r"\[ACME-\d+\]") == "printer"
