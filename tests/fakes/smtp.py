"""A real SMTP server on loopback (aiosmtpd): plain, STARTTLS or implicit TLS, optional auth, scripted refusals."""

from __future__ import annotations

import contextlib
import email
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.realbin import free_port

__all__ = ["Mailbox", "self_signed_cert", "smtp_server"]


@dataclass
class Mailbox:
    """What the server received, and the replies it should give instead of accepting."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"
    data_reply: str | None = None  # e.g. "451 4.3.0 try later"
    port: int = 0

    # aiosmtpd hook names
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted for delivery"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made by openssl; point SSL_CERT_FILE at it for the client to trust it."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def smtp_server(
    tls: str = "none", *, cert: tuple[Path, Path] | None = None, login: tuple[str, str] | None = None
) -> Iterator[Mailbox]:
    """Run aiosmtpd on a free loopback port; `tls` is none, starttls (required) or ssl."""
    box = Mailbox(port=free_port())
    context = None
    if tls != "none":
        assert cert is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    kwargs: dict = {}
    if tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    if login:

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == login[0] and auth_data.password.decode() == login[1]
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls == "starttls")
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        ssl_context=context if tls == "ssl" else None,
        **kwargs,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
