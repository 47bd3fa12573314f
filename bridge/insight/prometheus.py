"""Range queries to the one configured Prometheus (never to a host named in a payload)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import aiohttp

__all__ = ["PrometheusError", "Series", "query_range"]

_MAX_BODY = 8 * 1024 * 1024


class PrometheusError(RuntimeError):
    """Prometheus unreachable or answering an error; the message holds no URL credentials."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value), NaN and infinities left out


async def query_range(
    session: aiohttp.ClientSession,
    base_url: str,
    expr: str,
    start: float,
    end: float,
    step: float,
    timeout: float = 10.0,
) -> list[Series]:
    """`/api/v1/query_range` of `expr` on `base_url`; raises PrometheusError."""
    url = base_url.rstrip("/") + "/api/v1/query_range"
    form = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    limit = aiohttp.ClientTimeout(total=timeout)
    try:
        async with session.post(url, data=form, allow_redirects=False, timeout=limit) as resp:
            raw = await resp.content.read(_MAX_BODY + 1)
            if len(raw) > _MAX_BODY:
                raise PrometheusError("answer too large")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if resp.status != 200 or not isinstance(body, dict) or body.get("status") != "success":
                error = body.get("errorType", "") if isinstance(body, dict) else ""
                raise PrometheusError(f"query_range answered {resp.status} {str(error)[:40]}".strip())
    except TimeoutError:
        raise PrometheusError("query_range timed out") from None
    except aiohttp.ClientError as exc:
        raise PrometheusError(f"query_range failed: {type(exc).__name__}") from None
    data = body.get("data") or {}
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise PrometheusError("query_range did not answer a matrix")
    try:
        return [_series(item) for item in data.get("result") or []]
    except (TypeError, ValueError, AttributeError):
        raise PrometheusError("query_range answered a malformed matrix") from None


def _series(item: dict) -> Series:
    points = []
    for t, v in item.get("values") or []:
        value = float(v)
        if math.isfinite(value):
            points.append((float(t), value))
    return Series({str(k): str(x) for k, x in (item.get("metric") or {}).items()}, points)
