"""Authentication-Results: only trusted servers count; DKIM/DMARC pass must align."""

from __future__ import annotations

import pytest

from inboxd.core.authres import auth_passes

TRUSTED = ("mx.help.example",)


@pytest.mark.parametrize(
    "header",
    [
        "mx.help.example; dkim=pass header.d=help.example header.s=s1",
        "mx.help.example; spf=pass smtp.mailfrom=x; dkim=pass (good sig) header.d=help.example",
        "mx.help.example 1; dmarc=pass (p=reject) header.from=help.example",
        "MX.HELP.EXAMPLE; DKIM=PASS header.d=HELP.EXAMPLE",
        "mx.help.example; dkim=pass header.i=@help.example",
        "mx.help.example;\r\n dkim=pass\r\n header.d=help.example",
    ],
)
def test_passes(header: str) -> None:
    assert auth_passes([header], TRUSTED, "help.example")


def test_subdomain_sender_aligns_with_parent_dkim_domain() -> None:
    assert auth_passes(
        ["mx.help.example; dkim=pass header.d=help.example"], TRUSTED, "eu.help.example"
    )


@pytest.mark.parametrize(
    "header",
    [
        "evil.example; dkim=pass header.d=help.example",  # not our server
        "mx.help.example; dkim=fail header.d=help.example",
        "mx.help.example; dkim=pass header.d=evil.example",
        "mx.help.example; dkim=pass header.d=xhelp.example",
        "mx.help.example; dmarc=pass header.from=evil.example",
        "mx.help.example; spf=pass smtp.mailfrom=help.example",  # SPF alone is not enough
        "mx.help.example; dkim=pass (header.d=help.example) header.d=evil.example",
        "",
    ],
)
def test_fails(header: str) -> None:
    assert not auth_passes([header], TRUSTED, "help.example")


def test_nothing_trusted_means_nothing_passes() -> None:
    assert not auth_passes(["mx.help.example; dkim=pass header.d=help.example"], (), "help.example")
