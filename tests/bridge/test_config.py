"""Configuration: environment quick start, *_FILE secrets, YAML with ${VAR}, errors naming the key, routing."""

from __future__ import annotations

import pytest

from bridge.channels import CHANNEL_TYPES
from bridge.config import ConfigError, load_config
from bridge.payload import parse_notification
from bridge.routing import select_channels
from tests.bridge.test_dispatch import payload

SECRET = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"

ISSUE_EXAMPLE = """
channels:
  oncall-discord: {type: discord, webhook_url: "${DISCORD_ONCALL_URL}", mention_roles: {critical: ["123"]}}
  team-mail: {type: email, to: [llm-team@example.com]}
routes:
  - match: {severity: critical}
    channels: [oncall-discord, team-mail]
  - match_re: {model: "gpt-.*"}
    channels: [team-mail]
    continue: true
default_channels: [team-mail]
"""

SMTP = {"SMTP_HOST": "smtp.example.com", "EMAIL_FROM": "bridge@example.com", "SMTP_PASSWORD": "pw-secret"}


def test_defaults_give_a_console_channel():
    config = load_config({}, CHANNEL_TYPES)
    assert (config.host, config.port) == ("0.0.0.0", 9095)
    assert config.max_body == 16 * 1024**2 and config.dedupe_window == 120 and config.max_delivery_age == 86400
    assert list(config.channels) == ["console"] and config.routing.broadcast == ("console",)
    assert config.token is None


def test_environment_channels_are_named_by_type_and_get_everything():
    env = {
        "SLACK_WEBHOOK_URL": SECRET,
        "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/abc",
        "WEBHOOK_URL": "http://receiver:8080/hook",
        "EMAIL_TO": "a@example.com, b@example.com",
        **SMTP,
    }
    config = load_config(env, CHANNEL_TYPES)
    assert set(config.channels) == {"slack", "discord", "email", "webhook"}  # no console: auto
    email = config.channels["email"]
    assert email.to == ["a@example.com", "b@example.com"] and email.host == "smtp.example.com"
    assert email.port == 587 and email.tls == "starttls" and email.password == "pw-secret"
    assert set(select_channels(config.routing, config.channels, "", parse_notification(payload()))) == set(
        config.channels
    )
    assert SECRET not in repr(config)


def test_console_can_be_forced_on():
    config = load_config({"WEBHOOK_URL": "http://x/hook", "BRIDGE_CONSOLE": "true"}, CHANNEL_TYPES)
    assert set(config.routing.broadcast) == {"webhook", "console"}


def test_secrets_from_files(tmp_path):
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "slack").write_text(SECRET + "\n")
    (tmp_path / "smtp").write_text("pw\n")
    env = {
        "BRIDGE_TOKEN_FILE": str(tmp_path / "token"),
        "SLACK_WEBHOOK_URL_FILE": str(tmp_path / "slack"),
        "SMTP_PASSWORD_FILE": str(tmp_path / "smtp"),
        "SMTP_HOST": "h",
        "EMAIL_TO": "a@b.c",
        "EMAIL_FROM": "f@b.c",
    }
    config = load_config(env, CHANNEL_TYPES)
    assert config.token == "tok"
    assert config.channels["slack"].webhook_url == SECRET
    assert config.channels["email"].password == "pw"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"BRIDGE_LISTEN": "9095"}, "BRIDGE_LISTEN", id="listen"),
        pytest.param({"BRIDGE_MAX_BODY": "lots"}, "BRIDGE_MAX_BODY", id="size"),
        pytest.param({"BRIDGE_DEDUPE_WINDOW": "soon"}, "BRIDGE_DEDUPE_WINDOW", id="duration"),
        pytest.param({"BRIDGE_MAX_QUEUE": "0"}, "BRIDGE_MAX_QUEUE", id="queue"),
        pytest.param({"BRIDGE_CONSOLE": "maybe"}, "BRIDGE_CONSOLE", id="console"),
        pytest.param({"BRIDGE_TOKEN_FILE": "/nonexistent/token"}, "BRIDGE_TOKEN_FILE", id="token-file"),
        pytest.param({"EMAIL_TO": "a@b.c"}, "SMTP_HOST", id="email-half"),
        pytest.param({"SMTP_HOST": "h", "EMAIL_TO": "a@b.c"}, "EMAIL_FROM", id="email-from"),
        pytest.param(
            {"SMTP_HOST": "h", "EMAIL_TO": "a@b.c", "EMAIL_FROM": "f@b.c", "SMTP_TLS": "tls1"},
            "SMTP_TLS",
            id="smtp-tls",
        ),
        pytest.param({"SLACK_WEBHOOK_URL": "ftp://hooks/" + SECRET}, "SLACK_WEBHOOK_URL", id="slack-url"),
        pytest.param({"BRIDGE_TEMPLATES_DIR": "/nonexistent"}, "BRIDGE_TEMPLATES_DIR", id="templates"),
        pytest.param({"BRIDGE_PUBLIC_URL": "bridge.example.com"}, "BRIDGE_PUBLIC_URL", id="public-url"),
        pytest.param({"PROMETHEUS_QUERY_URL": "prometheus:9090"}, "PROMETHEUS_QUERY_URL", id="query-url"),
        pytest.param({"BRIDGE_CHART_TIMEOUT": "3 seconds"}, "BRIDGE_CHART_TIMEOUT", id="chart-timeout"),
        pytest.param({"SLACK_BOT_TOKEN": SECRET}, "SLACK_CHANNEL", id="slack-bot-channel"),
        pytest.param({"BRIDGE_CONFIG": "/nonexistent.yml"}, "BRIDGE_CONFIG", id="config-file"),
    ],
)
def test_bad_environment_names_the_variable(env, names):
    with pytest.raises(ConfigError) as err:
        load_config(env, CHANNEL_TYPES)
    assert names in str(err.value)
    assert SECRET not in str(err.value)


def _yaml(tmp_path, text: str, **env: str):
    path = tmp_path / "bridge.yml"
    path.write_text(text)
    return load_config({"BRIDGE_CONFIG": str(path), **env}, CHANNEL_TYPES)


def test_issue_example_routes(tmp_path):
    config = _yaml(tmp_path, ISSUE_EXAMPLE, DISCORD_ONCALL_URL="https://discord.com/api/webhooks/9/x", **SMTP)
    assert config.channels["oncall-discord"].webhook_url == "https://discord.com/api/webhooks/9/x"
    mail = config.channels["team-mail"]
    assert mail.host == "smtp.example.com" and mail.from_ == "bridge@example.com"  # filled from SMTP_*/EMAIL_FROM
    assert config.routing.broadcast == ()

    def route(path="", **labels):
        return select_channels(config.routing, config.channels, path, parse_notification(payload(**labels)))

    assert route(severity="critical") == ["oncall-discord", "team-mail"]
    assert route(severity="warning", model="gpt-4o") == ["team-mail"]  # continue, then nothing: no default added
    assert route(severity="warning", model="llama-3-70b") == ["team-mail"]  # default
    assert route("no-such-route", severity="critical") == ["oncall-discord", "team-mail"]


def test_routes_by_path_continue_and_send_resolved(tmp_path):
    text = """
channels:
  a: {type: webhook, url: "http://a/hook"}
  b: {type: webhook, url: "http://b/hook", send_resolved: false}
  c: {type: console}
routes:
  - path: critical
    channels: [a]
    continue: true
  - match: {severity: critical}
    channels: [b]
  - path: warning
    channels: [c]
    send_resolved: false
default_channels: [c]
"""
    config = _yaml(tmp_path, text)

    def route(path, status="firing", **labels):
        return select_channels(
            config.routing, config.channels, path, parse_notification(payload(status=status, **labels))
        )

    assert route("critical") == ["a", "b"]
    assert route("critical", status="resolved") == ["a"]  # b does not send resolved
    assert route("warning", severity="warning") == ["c"]
    assert route("warning", status="resolved", severity="warning") == []  # the route drops resolved
    assert route("", severity="info") == ["c"]
    assert config.routing.route_names == ("default", "critical", "warning")


def test_default_channels_default_to_every_yaml_channel(tmp_path):
    config = _yaml(tmp_path, "channels:\n  a: {type: console}\n  b: {type: webhook, url: 'http://b/'}\n")
    assert select_channels(config.routing, config.channels, "", parse_notification(payload())) == ["a", "b"]


def test_environment_channel_stays_beside_yaml(tmp_path):
    config = _yaml(tmp_path, "channels:\n  a: {type: console}\nroutes: []\n", WEBHOOK_URL="http://w/hook")
    assert select_channels(config.routing, config.channels, "", parse_notification(payload())) == ["webhook", "a"]


def test_interpolation_default_and_file(tmp_path):
    (tmp_path / "url").write_text("http://from-file/hook\n")
    text = 'channels:\n  a: {type: webhook, url: "${A_URL}"}\n  b: {type: webhook, url: "${B_URL:-http://b/x}"}\n'
    config = _yaml(tmp_path, text, A_URL_FILE=str(tmp_path / "url"))
    assert config.channels["a"].url == "http://from-file/hook"
    assert config.channels["b"].url == "http://b/x"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("channels: [", "line", id="yaml-syntax"),
        pytest.param(
            "channels:\n  a: {type: webhook, url: '${NOPE}'}\n", "channels.a.url: ${NOPE} is not set", id="missing-var"
        ),
        pytest.param("channels:\n  a: {type: pager}\n", "channels.a.type", id="unknown-type"),
        pytest.param(
            "channels:\n  a: {type: webhook, url: 'http://x', colour: red}\n", "channels.a.colour", id="unknown-key"
        ),
        pytest.param("channels:\n  a: {type: webhook}\n", "channels.a.url", id="missing-key"),
        pytest.param(
            f"channels:\n  a: {{type: slack, webhook_url: 'ftp://{SECRET}'}}\n", "channels.a.webhook_url", id="bad-url"
        ),
        pytest.param(
            "channels:\n  a: {type: console}\nroutes:\n  - channels: [b]\n",
            "routes[0].channels",
            id="unknown-route-channel",
        ),
        pytest.param(
            "channels:\n  a: {type: console}\nroutes:\n  - channels: [a]\n    match_re: {x: '('}\n",
            "routes[0].match_re.x",
            id="bad-regex",
        ),
        pytest.param(
            "channels:\n  a: {type: console}\nroutes:\n  - channels: [a]\n    contine: true\n",
            "routes[0].contine",
            id="typo-in-route",
        ),
        pytest.param("channels:\n  a: {type: console}\ndefault_channels: [z]\n", "default_channels", id="default"),
        pytest.param("chanels: {}\n", "chanels", id="unknown-top-key"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path, text, names):
    with pytest.raises(ConfigError) as err:
        _yaml(tmp_path, text)
    message = str(err.value)
    assert "BRIDGE_CONFIG" in message and str(tmp_path / "bridge.yml") in message
    assert names in message
    assert SECRET not in message


def test_chart_settings(tmp_path):
    config = load_config(
        {
            "PROMETHEUS_URL": "https://prometheus.example.com",
            "PROMETHEUS_QUERY_URL": "http://prometheus:9090",
            "BRIDGE_PUBLIC_URL": "https://bridge.example.com",
            "BRIDGE_CHART_TIMEOUT": "1s500ms",
        },
        CHANNEL_TYPES,
    )
    assert config.prometheus_query_url == "http://prometheus:9090"
    assert config.public_url == "https://bridge.example.com" and config.chart_timeout == 1.5
    assert load_config({}, CHANNEL_TYPES).chart_timeout == 3.0


def test_yaml_slack_bot_channel(tmp_path):
    text = 'channels:\n  s: {type: slack, bot_token: "${BOT}", channel: C0123, update_in_place: false}\n'
    config = _yaml(tmp_path, text, BOT="xoxb-" + SECRET)
    settings = config.channels["s"]
    assert settings.bot_token == "xoxb-" + SECRET and not settings.update_in_place
    assert "xoxb-" + SECRET in config.secrets()
    with pytest.raises(ConfigError, match=r"channels\.s: .*either webhook_url, or bot_token") as err:
        _yaml(tmp_path, 'channels:\n  s: {type: slack, bot_token: "${BOT}", webhook_url: "https://h/x"}\n', BOT=SECRET)
    assert SECRET not in str(err.value)
