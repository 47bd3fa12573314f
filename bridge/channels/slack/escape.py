"""Slack escaping: alert text can never become a mention, a link or markup."""

from __future__ import annotations

__all__ = ["escape", "mention"]


def escape(text: str) -> str:
    """Slack mrkdwn/plain text: `&`, `<`, `>` escaped, which makes `<!channel>`, `<!here>`, `<@U…>` and links inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(token: str) -> str:
    """A configured mention (never alert text): `here`, `channel`, a user group id (S…) or a user id."""
    if token in ("here", "channel", "everyone"):
        return f"<!{token}>"
    if token.startswith("S"):
        return f"<!subteam^{token}>"
    return f"<@{token}>"
