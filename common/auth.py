"""The one check of an `Authorization` header against a configured token."""

from __future__ import annotations

import base64
import binascii
import hmac

__all__ = ["check_authorization"]


def check_authorization(header: str | None, token: str, *, allow_basic: bool = True) -> bool:
    """True for `Bearer <token>`, or (if allowed) Basic auth with the token as the password; never raises.

    The scheme is case-insensitive; the comparison is constant-time on bytes, so a wrong guess tells nothing.
    """
    if not header or not token:
        return False
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    try:
        if scheme == "bearer":
            given = value.strip().encode("utf-8")
        elif scheme == "basic" and allow_basic:
            given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            given.decode("utf-8")  # a password that is not UTF-8 cannot be the token
        else:
            return False
        expected = token.encode("utf-8")
    except (binascii.Error, ValueError):  # bad base64, non-ASCII base64, non-UTF-8, lone surrogates
        return False
    return hmac.compare_digest(given, expected)
