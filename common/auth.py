"""PLACEHOLDER until the common branch lands."""

from __future__ import annotations

import base64
import binascii
import hmac


def check_authorization(header: str | None, token: str, *, allow_basic: bool = True) -> bool:
    scheme, _, value = (header or "").partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        given = value.strip()
    elif scheme == "basic" and allow_basic:
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode(), token.encode())
