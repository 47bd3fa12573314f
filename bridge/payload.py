"""The Alertmanager webhook payload (version 4): a body validated into its wire form, then into the model.

Validation is msgspec's, in one pass over the bytes in C (a 20-alert payload in about a sixth of the time the
hand-written checks over an orjson decode took): types, required fields, enums, and the JSON itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from bridge.model import Alert, Notification

__all__ = [
    "BodyError",
    "Payload",
    "PayloadAlert",
    "PayloadError",
    "decode_notification",
    "decode_payload",
    "parse_notification",
    "to_notification",
]

Status = Literal["firing", "resolved"]


class PayloadError(ValueError):
    """The request body is not a valid Alertmanager v4 webhook payload; the message names the first problem."""


class BodyError(ValueError):
    """The request body is not JSON this bridge accepts (not JSON, not UTF-8, nested too deeply)."""


# The wire form. Optional fields accept null as absent (some senders write it); unknown fields are ignored.
# gc=False: the garbage collector need not track these (they hold no cycles); with a 20-alert payload that
# halved its young passes under load.
class PayloadAlert(msgspec.Struct, rename="camel", gc=False):
    status: Status
    starts_at: datetime  # RFC 3339, parsed by msgspec; Alertmanager's nanoseconds rounded to microseconds
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ends_at: datetime | None = None
    generator_url: str | None = msgspec.field(default=None, name="generatorURL")
    fingerprint: str | None = None


class Payload(msgspec.Struct, rename="camel", gc=False):
    version: Literal["4"]
    alerts: Annotated[list[PayloadAlert], msgspec.Meta(min_length=1)]
    status: Status
    group_key: str
    receiver: str | None = None
    group_labels: dict[str, str] | None = None
    common_labels: dict[str, str] | None = None
    common_annotations: dict[str, str] | None = None
    external_url: str | None = msgspec.field(default=None, name="externalURL")
    truncated_alerts: Annotated[int, msgspec.Meta(ge=0)] | None = None


class _Version(msgspec.Struct):
    version: Any = None


_decoder = msgspec.json.Decoder(Payload)
_version = msgspec.json.Decoder(_Version)


def _invalid(body: bytes, exc: msgspec.ValidationError) -> PayloadError:
    """The first problem msgspec met, unless the version is wrong: then that, for a sender of another version
    (v3, a Grafana or vmalert payload) learns more from it than from the first field its format lacks."""
    try:
        version = _version.decode(body).version
    except (msgspec.MsgspecError, RecursionError):  # not an object, or malformed past the first problem
        version = "4"
    if version == "4":
        problem = str(exc)
    else:
        problem = "`version` is required" if version is None else f"`version` must be '4', not {str(version)[:20]!r}"
    return PayloadError(f"not an Alertmanager v4 webhook payload: {problem}")


def decode_payload(body: bytes) -> Payload:
    """The body validated as a v4 payload; BodyError (not acceptable JSON) or PayloadError (not a v4 payload).

    Refused as JSON: text that is not UTF-8, lone surrogate escapes, NaN, nesting too deep for the decoder:
    nothing a channel could not send or the outbox could not store.
    """
    if not body.isascii():
        try:
            body.decode("utf-8")  # msgspec checks the strings it keeps, not those of the fields it skips
        except UnicodeDecodeError:
            raise BodyError("body is not valid JSON: not UTF-8 text") from None
    try:
        payload = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(body, exc) from None
    except msgspec.DecodeError as exc:
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BodyError("body is not acceptable JSON: nested too deeply") from None
    for i, a in enumerate(payload.alerts):
        if _unless_zero(a.starts_at) is None:
            raise PayloadError(f"not an Alertmanager v4 webhook payload: `startsAt` is not set - at `$.alerts[{i}]`")
    return payload


def _unless_zero(when: datetime | None) -> datetime | None:
    return None if when is None or when.year == 1 else when  # Go's zero time (year 1) means "not set"


def to_notification(payload: Payload, body: bytes) -> Notification:
    """The model of a payload `decode_payload` validated; `body` is kept as the bytes to forward."""
    alerts = tuple(
        Alert(
            status=a.status,
            labels=a.labels or {},
            annotations=a.annotations or {},
            starts_at=a.starts_at,
            ends_at=_unless_zero(a.ends_at),
            generator_url=a.generator_url or "",
            fingerprint=a.fingerprint or "",
        )
        for a in payload.alerts
    )
    return Notification(
        receiver=payload.receiver or "",
        status=payload.status,
        alerts=alerts,
        group_labels=payload.group_labels or {},
        common_labels=payload.common_labels or {},
        common_annotations=payload.common_annotations or {},
        external_url=payload.external_url or "",
        group_key=payload.group_key,
        truncated_alerts=payload.truncated_alerts or 0,
        version=payload.version,
        body=body,
    )


def decode_notification(body: bytes) -> Notification:
    """A stored or received body (JSON bytes) as a Notification that keeps the bytes for forwarding as is."""
    try:
        return to_notification(decode_payload(body), body)
    except BodyError as exc:
        raise PayloadError(str(exc)) from None


def parse_notification(obj: Any) -> Notification:
    """A decoded JSON object (a test's, the CLI's) validated as a v4 payload, through its JSON text."""
    return decode_notification(json.dumps(obj).encode())
