"""Email channel against a real SMTP server (aiosmtpd): multipart, threading, TLS modes, auth, classification."""

from __future__ import annotations

import pytest

from bridge.channels import create_channel
from bridge.channels.email import EmailSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.payloads import alert, group
from tests.fakes.smtp import self_signed_cert, smtp_server
from tests.realbin import free_port


def _channel(port: int, **options):
    settings = {"host": "127.0.0.1", "port": port, "tls": "none", "from": "alerts@example.com",
                "to": ["oncall@example.com", "team@example.com"], **options}  # fmt: skip
    return create_channel("email", EmailSettings.model_validate(settings), ChannelContext(session=None))


async def _deliver(channel, payload) -> list:
    results = []
    for message in channel.render(parse_notification(payload)):
        results.append(await channel.send(message))
    return results


async def test_multipart_mail_with_content_and_thread_headers():
    with smtp_server() as box:
        channel = _channel(box.port)
        firing = group([alert(), alert("LLMHighLatency", "warning", index=1)])
        resolved = group([alert(status="resolved"), alert("LLMHighLatency", "warning", "resolved", index=1)])
        assert [r.outcome for r in await _deliver(channel, firing)] == [Outcome.DELIVERED]
        assert [r.outcome for r in await _deliver(channel, resolved)] == [Outcome.DELIVERED]
    first, second = box.messages
    assert box.envelopes[0] == ("alerts@example.com", ["oncall@example.com", "team@example.com"])
    assert first["Subject"] == "[FIRING:2] 2 alerts" and second["Subject"].startswith("[RESOLVED]")
    assert first.get_content_type() == "multipart/alternative"
    text = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert "LLMHighFailureRate - severity critical" in text and "model: gpt-4o" in text
    assert "<b>" not in text and "High failure rate for gpt-4o" in html
    assert "#D32F2F" in html and 'href="http://alertmanager:9093/#/silences/new?filter=' in html
    assert "resolved after: 7m 30s" in second.get_body(("plain",)).get_content()
    # One thread per alert group; a distinct, stable Message-ID per message.
    assert first["References"] == second["References"] == first["In-Reply-To"]
    assert first["Message-ID"] != second["Message-ID"]
    assert channel.render(parse_notification(firing))[0].body["message_id"] == first["Message-ID"]
    assert first["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
async def test_tls_modes_with_auth(tmp_path, monkeypatch, tls):
    cert = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # the client trusts our self-signed server
    with smtp_server(tls, cert=cert, login=("bridge", "pw-s3cret")) as box:
        ok = _channel(box.port, tls=tls, username="bridge", password="pw-s3cret")
        bad = _channel(box.port, tls=tls, username="bridge", password="wrong")
        assert [r.outcome for r in await _deliver(ok, group([alert()]))] == [Outcome.DELIVERED]
        (refused,) = await _deliver(bad, group([alert()]))
    assert len(box.messages) == 1
    assert refused.outcome is Outcome.PERMANENT and refused.reason == "smtp_535"
    assert "pw-s3cret" not in repr(bad.describe()) and "wrong" not in refused.reason


async def test_starttls_required_but_server_has_none_is_retry():
    with smtp_server("none") as box:
        (result,) = await _deliver(_channel(box.port, tls="starttls"), group([alert()]))
    assert result.outcome is Outcome.RETRY and not box.messages


@pytest.mark.parametrize(
    ("where", "reply", "outcome", "reason"),
    [
        pytest.param("rcpt", "550 5.1.1 no such user", Outcome.PERMANENT, "smtp_550", id="rcpt-550"),
        pytest.param("rcpt", "450 4.2.0 mailbox busy", Outcome.RETRY, "smtp_450", id="rcpt-450"),
        pytest.param("data", "554 5.7.1 rejected as spam", Outcome.PERMANENT, "smtp_554", id="data-554"),
        pytest.param("data", "451 4.3.0 try again later", Outcome.RETRY, "smtp_451", id="data-451"),
    ],
)
async def test_smtp_replies_classified(where, reply, outcome, reason):
    with smtp_server() as box:
        setattr(box, f"{where}_reply", reply)
        (result,) = await _deliver(_channel(box.port), group([alert()]))
    assert (result.outcome, result.reason) == (outcome, reason)


async def test_connection_refused_is_retry():
    (result,) = await _deliver(_channel(free_port()), group([alert()]))
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


def test_settings_need_recipients_and_plain_addresses():
    from pydantic import ValidationError

    base = {"host": "h", "from": "a@example.com"}
    with pytest.raises(ValidationError, match="at least one"):
        EmailSettings.model_validate({**base, "to": []})
    with pytest.raises(ValidationError, match="plain email address"):
        EmailSettings.model_validate({**base, "to": ["x@example.com\r\nBcc: evil@example.com"]})
    assert EmailSettings.model_validate({**base, "to": ["x@example.com"]}).port == 587
