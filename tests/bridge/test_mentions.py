"""Mentions by severity: the configured Discord role and user ids and Slack user-group and user ids ping;
`@everyone`, `<@id>`, `<@&id>`, `<!channel>` in alert text never do, as the platforms' own rules decide."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import ValidationError

from bridge.channels import create_channel
from bridge.channels.discord import DiscordSettings
from bridge.channels.slack import SlackSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.discord import FakeDiscord, pings
from tests.fakes.payloads import alert, group
from tests.fakes.slack_api import FakeSlackApi, slack_pings

HOSTILE = "@everyone @here <@999> <@&888> <!channel> <!here> <!subteam^S0EVIL> <@U0EVIL> <!everyone>"


def _payload(severity: str, status: str = "firing") -> dict:
    hostile = alert(
        "LLMHighFailureRate",
        severity,
        status,
        summary=HOSTILE,
        description=HOSTILE,
        model=HOSTILE,
        extra_labels={"instance": HOSTILE},
    )
    return group([hostile, alert("LLMHighLatency", severity, status, index=1)])


async def _discord_pings(severity: str, status: str = "firing") -> set[str]:
    async with aiohttp.ClientSession() as session, FakeDiscord(limit=100) as fake:
        settings = DiscordSettings(
            webhook_url=fake.url + "/api/webhooks/1/t",
            mention_roles={"critical": ["111"], "warning": ["333"]},
            mention_users={"critical": ["222"]},
        )
        channel = create_channel("d", settings, ChannelContext(session=session))
        for m in channel.render(parse_notification(_payload(severity, status))):
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
    return set().union(*fake.pinged)


@pytest.mark.parametrize(
    ("severity", "status", "expected"),
    [
        ("critical", "firing", {"role:111", "user:222"}),
        ("warning", "firing", {"role:333"}),
        ("info", "firing", set()),
        ("critical", "resolved", set()),
    ],
)
async def test_discord_only_configured_ids_ping(severity, status, expected):
    assert await _discord_pings(severity, status) == expected


def test_the_fake_counts_pings_like_discord():
    # Without allowed_mentions Discord pings whatever the content names: the fake must see that.
    assert pings("@everyone <@1> <@&2>", None) == {"everyone", "user:1", "role:2"}
    assert pings("@everyone <@1> <@&2>", {"parse": [], "roles": ["2"]}) == {"role:2"}


async def _slack_pings(severity: str, status: str = "firing") -> set[str]:
    async with aiohttp.ClientSession() as session, FakeSlackApi(burst=100) as fake:
        settings = SlackSettings(
            bot_token=fake.token,
            channel="#alerts",
            api_url=fake.api_url,
            mentions={"critical": ["S0ONCALL", "U0ALICE"], "warning": ["here"]},
        )
        channel = create_channel("s", settings, ChannelContext(session=session))
        for m in channel.render(parse_notification(_payload(severity, status))):
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
    return set().union(*fake.pinged)


@pytest.mark.parametrize(
    ("severity", "status", "expected"),
    [
        ("critical", "firing", {"group:S0ONCALL", "user:U0ALICE"}),
        ("warning", "firing", {"here"}),
        ("info", "firing", set()),
        ("critical", "resolved", set()),
    ],
)
async def test_slack_only_configured_ids_ping(severity, status, expected):
    assert await _slack_pings(severity, status) == expected


def test_the_slack_fake_counts_pings_like_slack():
    assert slack_pings(HOSTILE) == {"channel", "here", "everyone", "group:S0EVIL", "user:U0EVIL"}


@pytest.mark.parametrize("bad", ["<@U1>", "U1> <!channel", "@everyone", "s0lower", ""])
def test_slack_mention_ids_are_checked(bad):
    with pytest.raises(ValidationError, match="mentions are here, channel, everyone, or Slack ids"):
        SlackSettings(webhook_url="https://h.example/x", mentions={"critical": [bad]})


@pytest.mark.parametrize("bad", ["<@&1>", "1 @everyone", "everyone"])
def test_discord_mention_ids_are_checked(bad):
    with pytest.raises(ValidationError, match="snowflakes"):
        DiscordSettings(webhook_url="https://discord.example/api/webhooks/1/t", mention_users={"critical": [bad]})
