"""Teams channel: Adaptive Cards valid under the 1.4 schema and the size limit, inert alert text, 202/429 answers,
pacing through the real dispatcher, and `alert-bridge send-test --channel teams` end to end."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.channels import http as channel_http
from bridge.channels.teams import TeamsSettings
from bridge.channels.teams.escape import escape
from bridge.channels.teams.limits import TEAMS_MAX_BODY_BYTES, violations
from bridge.config import ConfigError, load_config
from bridge.model import ChannelContext, Message, Outcome
from bridge.payload import parse_notification
from tests.bridge.test_cli import run
from tests.bridge.test_dispatch import eventually, payload, post, sample
from tests.fakes.payloads import alert, group
from tests.fakes.payloads import sample as sample_payload
from tests.fakes.recorder import Answer
from tests.fakes.teams import FakeTeams

# The shape of a Workflows URL: the signature (`sig`) and the flow id are the secret parts.
SECRET_PATH = (
    "/workflows/0f1e2d3c4b5a/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SECRETSIGNATURE"
)

# ---------------------------------------------------------------- Adaptive Cards 1.4, written from the schema

_COLOURS = {"default", "dark", "light", "accent", "good", "warning", "attention"}
_CONTAINER_STYLES = {"default", "emphasis", "good", "attention", "warning", "accent"}
_SPACINGS = {"default", "none", "small", "medium", "large", "extraLarge", "padding"}
_SIZES = {"default", "small", "medium", "large", "extraLarge"}
_WEIGHTS = {"default", "lighter", "bolder"}
_COMMON = {"type", "id", "isVisible", "separator", "spacing", "height", "fallback", "requires"}
_PROPERTIES = {
    "TextBlock": _COMMON | {"text", "color", "fontType", "horizontalAlignment", "isSubtle", "maxLines", "size",
                            "weight", "wrap"},
    "Container": _COMMON | {"items", "selectAction", "style", "verticalContentAlignment", "bleed", "backgroundImage",
                            "minHeight"},
    "FactSet": _COMMON | {"facts"},
    "ActionSet": _COMMON | {"actions"},
    "Image": _COMMON | {"url", "altText", "backgroundColor", "horizontalAlignment", "selectAction", "size", "style",
                        "width"},
}  # fmt: skip
_REQUIRED = {"TextBlock": {"text"}, "Container": {"items"}, "FactSet": {"facts"}, "ActionSet": {"actions"},
             "Image": {"url"}}  # fmt: skip
_CARD = {"type", "version", "body", "actions", "$schema", "fallbackText", "speak", "lang", "minHeight", "msteams",
         "selectAction", "backgroundImage", "verticalContentAlignment", "refresh"}  # fmt: skip


def _check_action(action: dict) -> None:
    assert action["type"] == "Action.OpenUrl"
    assert set(action) <= {"type", "url", "title", "iconUrl", "style", "id"}
    assert urlsplit(action["url"]).scheme in ("http", "https") and urlsplit(action["url"]).netloc
    assert action["title"]


def _check_element(element: dict) -> None:
    kind = element["type"]
    assert kind in _PROPERTIES, kind
    assert set(element) <= _PROPERTIES[kind], set(element) - _PROPERTIES[kind]
    assert _REQUIRED[kind] <= set(element)
    assert element.get("spacing", "default") in _SPACINGS
    if kind == "TextBlock":
        assert isinstance(element["text"], str) and element["text"]
        assert element.get("color", "default") in _COLOURS
        assert element.get("size", "default") in _SIZES
        assert element.get("weight", "default") in _WEIGHTS
        assert element.get("wrap") is True  # long alert text must wrap, never be clipped
    elif kind == "Container":
        assert element.get("style", "default") in _CONTAINER_STYLES
        for item in element["items"]:
            _check_element(item)
    elif kind == "Image":
        assert urlsplit(element["url"]).scheme in ("http", "https") and urlsplit(element["url"]).netloc
        assert element.get("size", "auto") in {"auto", "stretch", "small", "medium", "large"}
        assert element.get("altText")
    elif kind == "FactSet":
        assert element["facts"]
        for fact in element["facts"]:
            assert set(fact) == {"title", "value"} and all(isinstance(v, str) for v in fact.values())
    else:
        assert 0 < len(element["actions"]) <= 6
        for action in element["actions"]:
            _check_action(action)


def valid_card_message(body: dict) -> dict:
    """Asserts a Workflows body is one Adaptive Card 1.4 message within the byte cap; returns the card."""
    assert len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()) <= TEAMS_MAX_BODY_BYTES
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert set(card) <= _CARD
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["msteams"] == {"width": "Full"}
    assert card["body"]
    for element in card["body"]:
        _check_element(element)
    for action in card.get("actions", []):
        _check_action(action)
    return card


def _texts(obj) -> list[str]:
    """Every string a reader sees as text: the links of actions left out."""
    if isinstance(obj, dict):
        if str(obj.get("type", "")).startswith("Action."):
            return [obj.get("title", "")]
        return [t for v in obj.values() for t in _texts(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _texts(v)]
    return [obj] if isinstance(obj, str) else []


def _actions(obj) -> list[dict]:
    if isinstance(obj, dict):
        found = [obj] if str(obj.get("type", "")).startswith("Action.") else []
        return found + [a for v in obj.values() for a in _actions(v)]
    if isinstance(obj, list):
        return [a for v in obj for a in _actions(v)]
    return []


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def teams():
    async with FakeTeams(per_second=1000, per_30s=100000) as server:
        yield server


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def _channel(url: str, session, **ctx_options):
    ctx = ChannelContext(session=session, **ctx_options)
    return create_channel("teams", TeamsSettings(webhook_url=url + SECRET_PATH), ctx)


async def _deliver(channel, notification) -> list[Message]:
    messages = channel.render(notification)
    for m in messages:
        result = await channel.send(m)
        assert result.outcome is Outcome.DELIVERED, result
    return messages


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("status", "title", "style"),
    [
        pytest.param("firing", "🔴 FIRING: DemoFailing", "attention", id="firing"),
        pytest.param("resolved", "✅ RESOLVED: DemoFailing", "good", id="resolved"),
    ],
)
async def test_alertmanager_samples_become_valid_cards(teams, session, status, title, style):
    channel = _channel(teams.url, session)
    await _deliver(channel, parse_notification(sample_payload(status)))
    [body] = teams.accepted
    card = valid_card_message(body)
    head, detail = card["body"]
    assert head["style"] == style and head["items"][0]["text"] == title
    assert detail["items"][0]["color"] == style
    facts = {f["title"]: f["value"] for f in detail["items"][3]["facts"]}
    assert facts["severity"] == "critical" and facts["job"] == "demo" and facts["started"].endswith("UTC")
    assert ("ended" in facts) == (status == "resolved")
    assert [a["title"] for a in card["actions"]] == ["Alertmanager group"]
    assert teams.requests[0].headers["Content-Type"].startswith("application/json")


async def test_firing_group_alerts_in_detail_with_facts_and_links(teams, session):
    channel = _channel(teams.url, session, grafana_url="https://grafana.example.com/d/llm")
    notification = parse_notification(group([alert(), alert("LLMHighLatency", "warning", index=1)]))
    [message] = await _deliver(channel, notification)
    assert not message.truncated
    card = valid_card_message(teams.accepted[0])
    head, first, second = card["body"]
    assert head["items"][0]["text"] == "🔴 FIRING: 2 alerts" and head["style"] == "attention"
    assert head["items"][1]["text"].startswith("2 firing")
    assert first["items"][0] == {"type": "TextBlock", "text": "🔴 FIRING: LLMHighFailureRate", "wrap": True,
                                 "weight": "bolder", "color": "attention"}  # fmt: skip
    assert second["items"][0]["color"] == "warning"
    assert first["items"][1]["text"] == "High failure rate for gpt-4o"  # a dash inside a line stays as it is
    assert first["items"][2]["text"] == "12% of requests to gpt-4o failed over 5m"
    facts = {f["title"]: f["value"] for f in first["items"][3]["facts"]}
    assert facts == {
        "severity": "critical",
        "model": "gpt-4o",
        "job": "llm-auth-proxy",
        "instance": "llm-exporter:9470",
        "started": "2026-01-10 10:00:00 UTC",
        "runbook": "docs/runbooks.md#llmhighfailurerate",  # relative and no RUNBOOK_BASE_URL: text, not a link
    }
    links = {a["title"]: a["url"] for a in first["items"][4]["actions"]}
    assert list(links) == ["Dashboard", "Silence", "Source"]
    assert links["Dashboard"] == "https://grafana.example.com/d/llm"
    assert links["Silence"].startswith("http://alertmanager:9093/#/silences/new?filter=")
    assert card["actions"][0]["url"].startswith("http://alertmanager:9093/#/alerts?filter=")


async def test_resolved_alert_shows_end_and_duration_and_no_silence(teams, session):
    channel = _channel(teams.url, session, runbook_base_url="https://wiki.example.com/")
    await _deliver(channel, parse_notification(group([alert(status="resolved")])))
    card = valid_card_message(teams.accepted[0])
    detail = card["body"][1]
    facts = {f["title"]: f["value"] for f in detail["items"][3]["facts"]}
    assert facts["ended"] == "2026-01-10 10:07:30 UTC" and facts["duration"] == "7m 30s"
    links = {a["title"]: a["url"] for a in detail["items"][4]["actions"]}
    assert "Silence" not in links
    assert links["Runbook"] == "https://wiki.example.com/docs/runbooks.md#llmhighfailurerate"


async def test_500_alerts_with_10kb_annotations_split_then_more(teams, session):
    big = "x" * 10_000
    alerts = [
        alert(f"LLMAlert{i % 7}", ["warning", "critical", "info"][i % 3], model=f"model-{i}", index=i,
              summary=f"summary {i} " + big, description=f"description {i} " + big, annotations={"extra": big})
        for i in range(500)
    ]  # fmt: skip
    channel = _channel(teams.url, session)
    messages = await _deliver(channel, parse_notification(group(alerts, truncated=12)))
    assert 1 < len(messages) <= 3
    assert [(m.part, m.parts) for m in messages] == [(i, len(messages)) for i in range(1, len(messages) + 1)]
    assert all(m.truncated and channel.violations(m) == [] for m in messages)
    assert all(len(raw.body) <= TEAMS_MAX_BODY_BYTES for raw in teams.requests)
    cards = [valid_card_message(body) for body in teams.accepted]
    assert len(cards) == len(messages)  # the fake accepted every part
    lines = sum(len(card["body"]) - 1 for card in cards) - 1  # minus each title, minus the "+N more" line
    more = cards[-1]["body"][-1]["text"]
    assert more.startswith(f"**+{500 + 12 - lines} more alerts**")
    assert "(3/3)" in cards[-1]["body"][0]["items"][0]["text"] or len(cards) < 3
    assert big not in json.dumps(cards)


async def test_hostile_alert_text_stays_inert(teams, session):
    hostile = (
        "[x](http://evil.example) **bold** _it_ ~~gone~~ `code` <at>Alice</at> <http://evil.example> "
        "{{DATE(2017-02-14T06:08:00Z, SHORT)}}"
    )
    evil = alert(
        "Evil\r\n- list\n# heading",
        model=hostile,
        summary=hostile,
        description=hostile + "\n- item\n> quote\n1. first",
        annotations={"runbook_url": "javascript:alert(1)", "dashboard_url": "javascript:alert(2)"},
    )
    channel = _channel(teams.url, session)
    await _deliver(channel, parse_notification(group([evil])))
    body = teams.accepted[0]
    valid_card_message(body)
    for text in _texts(body["attachments"][0]["content"]["body"]):
        for bad in ("[x](http", "**bold**", "_it_", "~~gone~~", "`code`", "<at>", "</at>", "<http", "{{DATE"):
            assert bad not in text, (bad, text)
        assert "\n- " not in text and "\n# " not in text and "\n> " not in text and "\n1. " not in text
    assert all(a["url"].startswith(("http://", "https://")) for a in _actions(body))
    assert "javascript" not in json.dumps(_actions(body))
    detail = body["attachments"][0]["content"]["body"][1]
    assert detail["items"][0]["text"] == "🔴 FIRING: Evil - list # heading"  # one line: no line start left to escape
    facts = {f["title"]: f["value"] for f in detail["items"][3]["facts"]}
    assert facts["runbook"] == "javascript:alert\\(1\\)"  # shown as (escaped) text only
    assert "\\[x\\]\\(http://evil.example\\) \\*\\*bold\\*\\*" in detail["items"][1]["text"]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        pytest.param("gpt-4o on 10.30.1.162 (eu)", "gpt-4o on 10.30.1.162 \\(eu\\)", id="readable"),
        pytest.param("- item\n+ item\n# head\n> quote", "\\- item\n\n\\+ item\n\n\\# head\n\n\\> quote",
                     id="line-start"),
        pytest.param("1. first\r\n2. second", "1\\. first\n\n2\\. second", id="ordered"),
        pytest.param("a*b*_c_~d~\\", "a\\*b\\*\\_c\\_\\~d\\~\\\\", id="inline"),
        pytest.param("<at>Bob</at>", "<\u200bat>Bob<\u200b/at>", id="mention"),
        pytest.param("{{{TIME(x)}}}", "{\u200b{\u200b{TIME\\(x\\)}}}", id="function"),
    ],
)  # fmt: skip
def test_escape(raw, escaped):
    assert escape(raw) == escaped


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(lambda b: b["attachments"][0]["content"]["body"].append(
            {"type": "TextBlock", "text": "x" * 30_000}), "bytes >", id="size"),
        pytest.param(lambda b: b.update(type="card"), 'not "message"', id="not-message"),
        pytest.param(lambda b: b.update(attachments=[]), "no attachments", id="no-attachments"),
        pytest.param(lambda b: b["attachments"][0].update(contentType="application/vnd.microsoft.card.hero"),
                     "contentType", id="hero-card"),
        pytest.param(lambda b: b["attachments"][0]["content"].pop("version"), "missing version", id="no-version"),
        pytest.param(lambda b: b["attachments"][0]["content"].update(type="MessageCard"), "not an AdaptiveCard",
                     id="message-card"),
        pytest.param(lambda b: b["attachments"][0]["content"]["actions"].append(
            {"type": "Action.OpenUrl", "title": "x", "url": "javascript:alert(1)"}), "not an http", id="js-url"),
        pytest.param(lambda b: b["attachments"][0]["content"]["actions"].extend(
            [{"type": "Action.OpenUrl", "title": "x", "url": "https://x.example"}] * 6), "7 actions > 6",
                     id="too-many-actions"),
        pytest.param(lambda b: b["attachments"][0]["content"]["body"].append({"type": "Table"}), "unknown element",
                     id="not-1.4"),
    ],
)  # fmt: skip
def test_violations(change, problem):
    channel = create_channel("t", TeamsSettings(webhook_url="https://x.example/w"), ChannelContext(session=None))
    [message] = channel.render(parse_notification(group([alert()])))
    assert violations(message.body) == []
    change(message.body)
    assert any(problem in v for v in violations(message.body)), violations(message.body)


# ---------------------------------------------------------------- transport


@pytest.mark.parametrize(
    ("answer", "outcome", "reason", "wait"),
    [
        pytest.param(Answer(202, b""), Outcome.DELIVERED, "", None, id="202"),
        pytest.param(Answer(429, '{"error": {"code": "TooManyRequests"}}', {"Retry-After": "3"}), Outcome.RETRY,
                     "http_429_toomanyrequests", 3.0, id="429"),
        pytest.param(Answer(400, '{"error": {"code": "TriggerInputSchemaMismatch", "message": "x"}}'),
                     Outcome.PERMANENT, "http_400_triggerinputschemamismatch", None, id="400"),
        pytest.param(Answer(413, "max allowed size is 28672 bytes"), Outcome.PERMANENT, "http_413", None, id="413"),
        pytest.param(Answer(401, '{"error": {"code": "Unauthorized: sig=abc"}}'), Outcome.PERMANENT, "http_401",
                     None, id="401-code-not-a-word"),
        pytest.param(Answer(502, "bad gateway"), Outcome.RETRY, "http_502", None, id="502"),
    ],
)  # fmt: skip
async def test_answers_are_classified(teams, session, answer, outcome, reason, wait):
    teams.script.append(answer)
    channel = _channel(teams.url, session)
    result = await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert (result.outcome, result.reason, result.retry_after) == (outcome, reason, wait)


async def test_timeout_and_connection_errors_retry(session, aiohttp_server, monkeypatch):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    server = await aiohttp_server(app)
    monkeypatch.setattr(channel_http, "TIMEOUT", aiohttp.ClientTimeout(total=0.3))
    channel = _channel(str(server.make_url("")).rstrip("/"), session)
    message = channel.render(parse_notification(group([alert()])))[0]
    assert (await channel.send(message)).reason == "timeout"
    port = server.port
    await server.close()
    closed = _channel(f"http://127.0.0.1:{port}", session)
    result = await closed.send(message)
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


async def test_signed_url_sent_exactly_and_never_shown(teams, session):
    channel = _channel(teams.url, session)
    result = await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert result.outcome is Outcome.DELIVERED
    assert teams.raw_paths == [SECRET_PATH]  # `%2F` kept: re-quoting would break the signature
    for shown in (
        channel.describe(),
        channel.lane,
        repr(channel._ctx),
        repr(TeamsSettings(webhook_url=teams.url + SECRET_PATH)),
    ):
        assert "SECRETSIGNATURE" not in shown and "0f1e2d3c4b5a" not in shown
    assert channel.describe() == f"{teams.url}/workflows/***"


async def test_fake_throttles_past_4_per_second(session):
    async with FakeTeams() as fake:
        channel = _channel(fake.url, session)
        message = channel.render(parse_notification(group([alert()])))[0]
        results = [await channel.send(message) for _ in range(5)]
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 4 + [Outcome.RETRY]
    assert results[-1].reason.startswith("http_429") and results[-1].retry_after >= 1


def test_pace_and_rate_option():
    ctx = ChannelContext(session=None)
    default = create_channel("t", TeamsSettings(webhook_url="https://x.example/w"), ctx)
    assert (default.pace.messages, default.pace.per_seconds) == (4, 2.1)
    slower = create_channel("t", TeamsSettings(webhook_url="https://x.example/w", rate=0.5), ctx)
    assert (slower.pace.messages, slower.pace.per_seconds) == (1, 2.0)
    faster = create_channel("t", TeamsSettings(webhook_url="https://x.example/w", rate=50), ctx)
    assert faster.pace == default.pace  # never faster than Teams allows


# ---------------------------------------------------------------- configuration


def test_environment_and_yaml_configuration(tmp_path):
    secret = tmp_path / "teams_url"
    secret.write_text("https://prod-00.westus.logic.azure.com/workflows/1/x?sig=FROMFILE\n")
    config = load_config({"TEAMS_WEBHOOK_URL_FILE": str(secret)}, CHANNEL_TYPES)
    assert isinstance(config.channels["teams"], TeamsSettings)
    assert config.channels["teams"].webhook_url.endswith("sig=FROMFILE")
    assert any("FROMFILE" in s for s in config.secrets())  # redacted from logs

    yaml = tmp_path / "bridge.yml"
    yaml.write_text('channels:\n  ops: {type: teams, webhook_url: "${OPS_URL}", send_resolved: false, rate: 1}\n')
    config = load_config({"BRIDGE_CONFIG": str(yaml), "OPS_URL": "https://t.example/w?sig=S"}, CHANNEL_TYPES)
    ops = config.channels["ops"]
    assert isinstance(ops, TeamsSettings) and ops.send_resolved is False and ops.rate == 1

    yaml.write_text("channels:\n  ops: {type: teams, webhook_url: https://t.example/w, mentions: {critical: [x]}}\n")
    with pytest.raises(ConfigError, match=r"channels\.ops\.mentions"):
        load_config({"BRIDGE_CONFIG": str(yaml)}, CHANNEL_TYPES)


def test_bad_url_names_the_variable_not_the_value():
    with pytest.raises(ConfigError) as info:
        load_config({"TEAMS_WEBHOOK_URL": "ftp://host/sig=SECRET"}, CHANNEL_TYPES)
    assert "TEAMS_WEBHOOK_URL" in str(info.value) and "SECRET" not in str(info.value)


# ---------------------------------------------------------------- through the dispatcher and the CLI


async def _app(aiohttp_client, tmp_path, **env: str):
    env = {"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_RETRY_INITIAL": "0.1", **env}
    return await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))


async def test_429_retry_after_is_honoured_by_the_dispatcher(aiohttp_client, tmp_path):
    async with FakeTeams() as fake:
        fake.script.append(Answer(429, '{"error": {"code": "TooManyRequests"}}', {"Retry-After": "1"}))
        client = await _app(aiohttp_client, tmp_path, TEAMS_WEBHOOK_URL=fake.url + SECRET_PATH)
        await post(client, payload("g1"))
        await post(client, payload("g2"))
        await eventually(lambda: len(fake.accepted) == 2, timeout=15)
        first = fake.requests[0].at
        assert all(r.at - first >= 1.0 for r in fake.requests[1:])
        assert sample(client, "alert_bridge_rate_limited_total", channel="teams") == 1
        # The fake has answered; the dispatcher may not have counted the answer yet.
        await eventually(
            lambda: sample(client, "alert_bridge_deliveries_total", channel="teams", result="delivered") == 2
        )


async def test_burst_is_paced_without_a_429(aiohttp_client, tmp_path):
    async with FakeTeams() as fake:
        client = await _app(aiohttp_client, tmp_path, TEAMS_WEBHOOK_URL=fake.url + SECRET_PATH)
        for i in range(9):
            assert (await post(client, payload(f"g{i}"))).status == 200
        await eventually(lambda: len(fake.accepted) == 9, timeout=15)
        assert [r.status for r in fake.requests] == [202] * 9 and fake.early == []
        assert fake.requests[-1].at - fake.requests[0].at >= 4.0  # three bursts of four (or fewer), 2.1 s apart


async def test_send_test_delivers_one_card(tmp_path):
    async with FakeTeams() as fake:
        code, out, err = await run(
            tmp_path, "send-test", "--channel", "teams", TEAMS_WEBHOOK_URL=fake.url + SECRET_PATH
        )
        assert code == 0, err
        assert "teams" in out and "delivered (1 message)" in out
        assert "SECRETSIGNATURE" not in out + err and "0f1e2d3c4b5a" not in out + err
        [body] = fake.accepted
    card = valid_card_message(body)
    assert card["body"][0]["items"][0]["text"] == "🟠 FIRING: AlertBridgeSendTest"
    assert fake.raw_paths == [SECRET_PATH]


async def test_render_teams_type_prints_the_card(tmp_path):
    from tests.bridge.test_cli import FIRING

    code, out, err = await run(tmp_path, "render", "--channel", "teams", str(FIRING))
    assert code == 0, err
    valid_card_message(json.loads(out))
