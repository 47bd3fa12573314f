"""Email channel: multipart/alternative over SMTP (aiosmtplib), threaded per alert group."""

from __future__ import annotations

import hashlib
import json
import re
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

import aiosmtplib

from bridge.channels.email import limits
from bridge.channels.email.render import CHART_CID, Mail, html_templates, text_templates
from bridge.channels.email.settings import EmailSettings
from bridge.channels.http import lane_key
from bridge.model import ChannelContext, Message, Notification, Outcome, Pace, Result
from bridge.render.context import build_view
from bridge.render.escape import one_line
from bridge.render.fit import fit

__all__ = ["EmailChannel", "thread_id"]

TIMEOUT_SECONDS = 30.0


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2]
    return domain if re.fullmatch(r"[A-Za-z0-9.-]{1,200}", domain) else "alert-bridge.invalid"


def thread_id(group_key: str, domain: str) -> str:
    """The Message-ID every message of an alert group refers to, so clients thread firing and resolved."""
    return f"<group.{hashlib.sha256(group_key.encode()).hexdigest()[:32]}@{domain}>"


def _message_id(notification: Notification, part: int, domain: str) -> str:
    # Stable for the same notification: a resend after a lost answer carries the same Message-ID.
    identity = json.dumps(
        [notification.group_key, notification.status]
        + [
            [a.fingerprint, a.starts_at.isoformat(), a.ends_at.isoformat() if a.ends_at else ""]
            for a in notification.alerts
        ]
    )
    return f"<{hashlib.sha256(identity.encode()).hexdigest()[:32]}.{part}@{domain}>"


class EmailChannel:
    type = "email"

    def __init__(self, name: str, settings: EmailSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("email", f"{settings.host}:{settings.port}:{','.join(sorted(settings.to))}")
        self.pace = Pace.from_rate(settings.rate)  # none unless configured
        self._s = settings
        self._ctx = ctx
        self._domain = _domain(settings.from_)
        self._text = text_templates(ctx.templates_dir)
        self._html = html_templates(ctx.templates_dir)

    def describe(self) -> str:
        return f"smtp://{self._s.host}:{self._s.port} ({self._s.tls}) to {len(self._s.to)} recipient(s)"

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        messages = fit(view, Mail(self._text, self._html), self._ctx.max_parts)
        thread = thread_id(notification.group_key, self._domain)
        for m in messages:
            m.body["message_id"] = _message_id(notification, m.part, self._domain)
            m.body["in_reply_to"] = thread
            m.body["references"] = thread
        if notification.extras.chart and messages and view.has_chart:
            messages[0].files = {"chart.png": notification.extras.chart}  # inline in the HTML part (cid:)
        return messages

    def violations(self, message: Message) -> list[str]:
        return limits.violations(message.body)

    def _email(self, body: dict, files: dict[str, bytes] | None = None) -> EmailMessage:
        msg = EmailMessage(policy=SMTP)
        msg["Subject"] = one_line(body["subject"])
        msg["From"] = self._s.from_
        msg["To"] = ", ".join(self._s.to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = body["message_id"]
        msg["In-Reply-To"] = body["in_reply_to"]
        msg["References"] = body["references"]
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to alerts
        msg.set_content(body["text"])
        msg.add_alternative(body["html"], subtype="html")
        for name, content in (files or {}).items():
            html = msg.get_payload()[1]
            html.add_related(content, maintype="image", subtype="png", cid=f"<{CHART_CID}>", filename=name)
        return msg

    async def send(self, message: Message) -> Result:
        s = self._s
        try:
            await aiosmtplib.send(
                self._email(message.body, message.files),
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.tls == "ssl",
                start_tls=s.tls == "starttls",
                timeout=TIMEOUT_SECONDS,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            permanent = bool(codes) and all(500 <= c < 600 for c in codes)
            return Result(Outcome.PERMANENT if permanent else Outcome.RETRY, f"smtp_{codes[0] if codes else 0}")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return Result(Outcome.RETRY, "timeout")
        except aiosmtplib.SMTPResponseException as exc:
            # SMTP 5xx is final (bad address, auth refused, message rejected); 4xx is "try again later".
            outcome = Outcome.PERMANENT if 500 <= exc.code < 600 else Outcome.RETRY
            return Result(outcome, f"smtp_{exc.code}")
        except (aiosmtplib.SMTPException, OSError):
            return Result(Outcome.RETRY, "connection_error")
        return Result(Outcome.DELIVERED)

    async def close(self) -> None:
        return None
