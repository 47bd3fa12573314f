"""Authentication of the bridge's HTTP API: every route but the public ones needs the token, whatever is sent.

Oversized headers never reach the check: aiohttp refuses a header line over its 8,190-byte cap with
400 ("Got more than 8190 bytes"), not 431; the test records the status it got.
"""

from __future__ import annotations

import base64
import hmac
import json

import pytest

from bridge.app import OPEN_PATHS, create_app, is_open
from common import auth
from tests.bridge.test_dispatch import payload, test_config

TOKEN = "auth-suite-token-5c1e0b"


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    return await aiohttp_client(create_app(test_config(tmp_path, channels=(), token=TOKEN)))


def _basic(password: str, user: str = "am") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


CREDENTIALS = {
    "missing": None,
    "empty": "",
    "wrong bearer": "Bearer not-the-token",
    "token as prefix": f"Bearer {TOKEN}x",
    "token cut short": f"Bearer {TOKEN[:-1]}",
    "wrong basic": _basic("not-the-token"),
    "bare token, no scheme": TOKEN,
    "other scheme (Token)": f"Token {TOKEN}",
    "other scheme (Digest)": f'Digest username="am", response="{TOKEN}"',
    "non-ASCII": "Bearer tökén",
    "huge (6 KiB) bearer": "Bearer " + "A" * 6144,
}


async def test_wrong_credentials_are_401_on_every_protected_route(client, figures):
    routes = sorted(
        {(r.method, r.resource.canonical) for r in client.app.router.routes() if r.method in ("GET", "POST")}
    )
    protected = [(m, p) for m, p in routes if not is_open(p)]
    assert ("POST", "/alerts") in protected and ("GET", "/dead-letters") in protected
    body = json.dumps(payload()).encode()
    for method, path in protected:
        url = path.replace("{route}", "critical").replace("{id}", "1")
        for name, value in CREDENTIALS.items():
            headers = {} if value is None else {"Authorization": value}
            async with client.request(method, url, data=body if method == "POST" else None, headers=headers) as r:
                text = await r.text()
                assert r.status == 401, (method, url, name, r.status)
                assert TOKEN not in text and r.headers["WWW-Authenticate"].startswith("Bearer")
    for path in sorted(OPEN_PATHS):
        assert (await client.get(path)).status == 200, path
    async with client.post("/alerts", data=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200
    async with client.post("/alerts/critical", data=body, headers={"Authorization": _basic(TOKEN)}) as r:
        assert r.status == 200
    figures.record("auth", "protected routes checked", ", ".join(f"{m} {p}" for m, p in protected))
    figures.record("auth", "credentials tried on each (all 401)", "; ".join(CREDENTIALS))
    figures.record("auth", "open without the token", ", ".join([*sorted(OPEN_PATHS), "/charts/{id}.png"]))


async def test_oversized_headers_are_refused_before_the_check(client, figures):
    headers = {"Authorization": "Bearer " + "A" * 20_000}
    async with client.post("/alerts", data=b"{}", headers=headers) as r:
        status = r.status
        text = await r.text()
    assert status in (400, 431)
    assert "A" * 100 not in text
    figures.record("auth", "Authorization header of 20,000 bytes", f"{status} from aiohttp (line over 8,190 bytes)")


def test_the_comparison_is_constant_time(monkeypatch, figures):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.check_authorization(f"Bearer {TOKEN}", TOKEN)
    assert not auth.check_authorization("Bearer x", TOKEN)
    assert not auth.check_authorization(_basic("y" * 50), TOKEN)
    # Every verdict on a well-formed credential comes from hmac.compare_digest, whatever the length.
    assert calls == [(len(TOKEN), len(TOKEN)), (1, len(TOKEN)), (50, len(TOKEN))]
    figures.record("auth", "comparison", "hmac.compare_digest on bytes, for Bearer and Basic alike")
