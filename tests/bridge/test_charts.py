"""Charts and firing history: the expression and threshold from generatorURL, the PNG itself, and what the
channels do with it; a slow or failing Prometheus never holds a message up."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from email import message_from_bytes
from email.policy import default

import pytest
from PIL import Image

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.channels.teams import TeamsSettings
from bridge.config import load_config
from bridge.insight.chart import render_chart
from bridge.insight.prometheus import Series
from bridge.insight.promql import expression_from, split_threshold
from bridge.insight.service import count_firings
from bridge.model import ChannelContext, Extras
from bridge.payload import parse_notification
from tests.bridge.test_dispatch import eventually, post, sample
from tests.bridge.test_teams import valid_card_message
from tests.fakes.discord import FakeDiscord
from tests.fakes.payloads import alert, group
from tests.fakes.prometheus import FakePrometheus
from tests.fakes.recorder import Answer, Recorder
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.smtp import smtp_server

THRESHOLD_RGB = (0xD3, 0x2F, 0x2F)
HOOK = "/api/webhooks/1/tok"


# ---------------------------------------------------------------- expression and threshold


@pytest.mark.parametrize(
    ("expr", "series", "threshold"),
    [
        ("llm:failure_ratio:rate5m > 0.05", "llm:failure_ratio:rate5m", 0.05),
        ('up{job="a>b"} == 0', 'up{job="a>b"}', 0.0),
        ("(a > 2) and on (job) b >= 0.1", "a", 2.0),
        ("histogram_quantile(0.95, sum by (le) (rate(x[5m]))) > 2\nand on (job, model)\n  c >= 0.1",
         "histogram_quantile(0.95, sum by (le) (rate(x[5m])))", 2.0),
        ("0.5 < errors", "errors", 0.5),
        ("a > bool 3", "a", 3.0),
        ("a > b * 3", "a > b * 3", None),
        ("vector(1)", "vector(1)", None),
    ],
)  # fmt: skip
def test_split_threshold(expr, series, threshold):
    assert split_threshold(expr) == (series, threshold)


def test_expression_from_generator_url_never_the_host():
    url = "http://evil.example:9090/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1"
    assert expression_from(url) == "rate(x[5m]) > 1"
    assert expression_from("http://prometheus:9090/graph") is None
    assert expression_from("not a url at all") is None


def test_count_firings_counts_separate_periods():
    step = 60.0
    assert count_firings([], step) == 0
    assert count_firings([(t * step, 1.0) for t in range(10)], step) == 1
    flapping = [(t * step, 1.0) for t in [*range(0, 5), *range(8, 9), *range(20, 30)]]
    assert count_firings(flapping, step) == 3


# ---------------------------------------------------------------- the picture


def _series(values: list[float], model: str = "gpt-4o", start: float = 1_780_000_000.0) -> Series:
    return Series({"job": "llm-auth-proxy", "model": model}, [(start + 15 * i, v) for i, v in enumerate(values)])


def _pixels(png: bytes, rgb: tuple[int, int, int]) -> int:
    colours = Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(count for count, colour in colours if colour == rgb)


def test_chart_is_a_png_that_follows_the_data_with_the_threshold_drawn():
    rising = [0.01 * i for i in range(60)]
    falling = list(reversed(rising))
    with_threshold = render_chart([_series(rising)], 0.3, None, "LLMHighFailureRate model=gpt-4o")
    image = Image.open(io.BytesIO(with_threshold))
    assert image.format == "PNG" and image.size == (800, 300)
    other = render_chart([_series(falling)], 0.3, None, "LLMHighFailureRate model=gpt-4o")
    assert other != with_threshold  # the same frame, different data, different picture
    without = render_chart([_series(rising)], None, None, "LLMHighFailureRate model=gpt-4o")
    assert _pixels(with_threshold, THRESHOLD_RGB) > 300  # a dashed line across the plot
    assert _pixels(without, THRESHOLD_RGB) == 0


def test_chart_keeps_a_few_lines_at_most():
    many = [_series([float(i)] * 10, model=f"m{i}") for i in range(12)]
    assert Image.open(io.BytesIO(render_chart(many, None, None, "many"))).format == "PNG"


# ---------------------------------------------------------------- through the bridge


def _now_series(values: list[float]) -> list[tuple[float, float]]:
    start = time.time() - 15 * len(values)
    return [(start + 15 * i, v) for i, v in enumerate(values)]


async def _app(aiohttp_client, tmp_path, **env: str):
    env = {"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_RETRY_INITIAL": "0.1", **env}
    return await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))


@pytest.fixture
async def prometheus():
    async with FakePrometheus() as fake:
        labels = {"job": "llm-auth-proxy", "model": "gpt-4o"}
        fake.series = [(labels, _now_series([0.02 * i for i in range(40)]))]
        # Two firing periods in the last 24 h: 5 minutes two hours ago, and the last 10 minutes.
        now = time.time()
        periods = [(now - 7200 + 60 * i, 1.0) for i in range(5)] + [(now - 600 + 60 * i, 1.0) for i in range(10)]
        alerts = {"__name__": "ALERTS", "alertname": "LLMHighFailureRate", "alertstate": "firing", **labels}
        fake.alerts = [(alerts, periods)]
        yield fake


async def test_discord_first_post_carries_the_chart_and_the_firing_count(aiohttp_client, tmp_path, prometheus):
    async with FakeDiscord(limit=100) as discord, Recorder() as elsewhere:
        firing = alert()
        firing["generatorURL"] = elsewhere.url + "/graph?g0.expr=llm%3Afailure_ratio%3Arate5m+%3E+0.05"
        client = await _app(
            aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=discord.url + HOOK, PROMETHEUS_QUERY_URL=prometheus.url
        )
        await post(client, group([firing]))
        await eventually(lambda: len(discord.delivered) == 1)
        resolved = alert(status="resolved")
        await post(client, group([resolved]))
        await eventually(lambda: len(discord.delivered) == 2)
    first, edit = discord.delivered
    assert first.headers["Content-Type"].startswith("multipart/form-data")
    (message,) = discord.messages.values()
    png = message["files"]["chart.png"]
    assert Image.open(io.BytesIO(png)).format == "PNG" and _pixels(png, THRESHOLD_RGB) > 300  # threshold 0.05
    assert "fired 2× in the last 24 h" in message["embeds"][0]["description"]
    assert edit.method == "PATCH" and "image" not in str(edit.json["embeds"])
    assert elsewhere.requests == []  # the payload's host is never asked anything
    assert prometheus.queries[0].startswith(("llm:failure_ratio:rate5m", "ALERTS"))
    assert "llm:failure_ratio:rate5m" in prometheus.queries
    assert sample(client, "alert_bridge_chart_failures_total", reason="timeout") == 0


GARBAGE = '{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [["x", {}]]}]}}'


@pytest.mark.parametrize("trouble", ["slow", "down", "error", "garbage"])
async def test_a_slow_or_failing_prometheus_never_holds_the_message(aiohttp_client, tmp_path, prometheus, trouble):
    if trouble == "slow":
        prometheus.delay = 5.0
    elif trouble == "error":
        prometheus.respond = lambda rec: Answer(503, "overloaded")
    elif trouble == "garbage":
        prometheus.respond = lambda rec: Answer(200, GARBAGE, {"Content-Type": "application/json"})
    url = prometheus.url if trouble != "down" else "http://127.0.0.1:9"  # nothing listens on the discard port
    async with FakeDiscord(limit=100) as discord:
        client = await _app(
            aiohttp_client,
            tmp_path,
            DISCORD_WEBHOOK_URL=discord.url + HOOK,
            PROMETHEUS_URL=url,
            BRIDGE_CHART_TIMEOUT="500ms",
        )
        started = time.monotonic()
        await post(client, group([alert()]))
        await eventually(lambda: len(discord.delivered) == 1)
        took = time.monotonic() - started
    assert took < 2.0, took  # the budget (0.5 s) and delivery, never the 5 s Prometheus takes
    assert discord.messages and not next(iter(discord.messages.values()))["files"]
    reason = "timeout" if trouble == "slow" else "query"
    assert sample(client, "alert_bridge_chart_failures_total", reason=reason) >= 1


async def test_slack_shows_the_chart_from_the_bridge_which_serves_it_without_auth(aiohttp_client, tmp_path, prometheus):
    async with FakeSlackApi(burst=100) as slack:
        client = await _app(
            aiohttp_client,
            tmp_path,
            SLACK_BOT_TOKEN=slack.token,
            SLACK_CHANNEL="#alerts",
            SLACK_API_URL=slack.api_url,
            PROMETHEUS_URL=prometheus.url,
            BRIDGE_PUBLIC_URL="https://bridge.example.com/",
            BRIDGE_TOKEN="intake-token",
        )
        await post(client, group([alert()]), headers={"Authorization": "Bearer intake-token"})
        await eventually(lambda: len(slack.delivered) == 1)
    (message,) = slack.messages.values()
    image = message["attachments"][0]["blocks"][-1]
    assert image["type"] == "image" and image["image_url"].startswith("https://bridge.example.com/charts/")
    path = image["image_url"].removeprefix("https://bridge.example.com")
    resp = await client.get(path)  # no token: Slack fetches it as it is
    assert resp.status == 200 and resp.content_type == "image/png"
    assert Image.open(io.BytesIO(await resp.read())).format == "PNG"
    assert (await client.get("/charts/AAAAAAAAAAAAAAAAAAAAAAAA.png")).status == 404
    assert (await client.get("/charts/..%2Foutbox.db.png")).status == 404
    assert (await client.get("/dead-letters")).status == 401  # everything else still needs the token


async def test_email_carries_the_chart_inline(aiohttp_client, tmp_path, prometheus):
    with smtp_server() as box:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(box.port), "SMTP_TLS": "none"}
        client = await _app(
            aiohttp_client,
            tmp_path,
            EMAIL_FROM="bridge@example.com",
            EMAIL_TO="oncall@example.com",
            PROMETHEUS_URL=prometheus.url,
            **env,
        )
        await post(client, group([alert()]))
        await eventually(lambda: len(box.messages) == 1)
    (mail,) = box.messages
    mail = message_from_bytes(mail.as_bytes(), policy=default)
    html = mail.get_body(("html",))
    assert 'src="cid:alert-chart@alert-bridge"' in html.get_content()
    (image,) = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<alert-chart@alert-bridge>"
    assert Image.open(io.BytesIO(image.get_content())).format == "PNG"
    assert "fired in the last 24 h: 2×" in mail.get_body(("plain",)).get_content()


async def test_without_prometheus_nothing_is_asked_and_nothing_waits(aiohttp_client, tmp_path):
    async with FakeDiscord(limit=100) as discord:
        client = await _app(aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=discord.url + HOOK)
        await post(client, group([alert()]))
        await eventually(lambda: len(discord.delivered) == 1)
    assert discord.delivered[0].headers["Content-Type"] == "application/json"
    assert "fired" not in str(discord.delivered[0].json)


def test_teams_card_shows_the_chart_from_the_bridge():
    notification = parse_notification(group([alert()]))
    url = "https://bridge.example.com/charts/" + "A" * 24 + ".png"
    notification = dataclasses.replace(notification, extras=Extras(chart=b"png", chart_url=url, fired={"0" * 16: 3}))
    settings = TeamsSettings(webhook_url="https://example.webhook.office.com/workflows/x")
    (message,) = create_channel("t", settings, ChannelContext(session=None)).render(notification)
    card = valid_card_message(message.body)
    assert card["body"][-1] == {"type": "Image", "url": url, "altText": "LLMHighFailureRate: the last hour",
                                "size": "stretch"}  # fmt: skip
    assert '{"title": "fired in 24 h", "value": "3×"}' in json.dumps(card, ensure_ascii=False)
