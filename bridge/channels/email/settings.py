"""Email channel settings: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bridge.model import ChannelSettings

__all__ = ["EmailSettings"]


class EmailSettings(ChannelSettings):
    type: Literal["email"] = "email"
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    from_: str = Field(alias="from")
    to: list[str]

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one recipient")
        for address in value:
            if "@" not in address or any(c in address for c in "\r\n,;<>"):
                raise ValueError(f"not a plain email address: {address[:60]!r}")
        return value
