"""check_authorization: Bearer, Basic with the token as password, and everything else refused without raising."""

from __future__ import annotations

import base64

import pytest

from common.auth import check_authorization

TOKEN = "tök-en/123"


def _basic(user: str | bytes, password: str | bytes) -> str:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":"
    raw += password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("header", "basic_ok", "bearer_only"),
    [
        (f"Bearer {TOKEN}", True, True),
        (f"bearer {TOKEN}", True, True),
        (f"BEARER   {TOKEN}  ", True, True),
        (_basic("alertmanager", TOKEN), True, False),
        (_basic("", TOKEN), True, False),
        (f"basic {base64.b64encode(f'x:{TOKEN}'.encode()).decode()}", True, False),
        (f"Bearer {TOKEN}x", False, False),
        (f"Bearer {TOKEN[:-1]}", False, False),
        ("Bearer ", False, False),
        ("Bearer", False, False),
        (TOKEN, False, False),
        (f"Token {TOKEN}", False, False),
        (f"Digest {TOKEN}", False, False),
        (_basic(TOKEN, "wrong"), False, False),
        (_basic("user", TOKEN + "x"), False, False),
        ("Basic !!!not-base64!!!", False, False),
        ("Basic " + base64.b64encode(TOKEN.encode()).decode(), False, False),  # no colon: no password
        (_basic("user", b"\xff\xfe"), False, False),  # password not UTF-8
        ("Basic dGVzdA", False, False),  # bad padding
        ("Basic ünïcode", False, False),
        ("Bearer \ud800", False, False),  # lone surrogate
        ("Bearer " + "a" * 1_000_000, False, False),
        ("Basic " + "A" * 1_000_000, False, False),
        ("", False, False),
        (None, False, False),
    ],
)
def test_table(header, basic_ok, bearer_only):
    assert check_authorization(header, TOKEN) is basic_ok
    assert check_authorization(header, TOKEN, allow_basic=False) is bearer_only


def test_empty_token_never_matches():
    assert check_authorization("Bearer ", "") is False
    assert check_authorization(_basic("u", ""), "") is False
