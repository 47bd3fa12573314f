"""Delivery from the outbox: one lane per destination, in order per alert group, with backoff and pacing.

Retrying, waiting and counting happen here only; channels render, send once and classify the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping

from bridge.metrics import BridgeMetrics
from bridge.model import Channel, Message, Notification, Outcome, Result
from bridge.outbox import Delivery, Outbox, OutboxError
from bridge.payload import PayloadError, decode_notification

__all__ = ["IN_FLIGHT_MAX", "Dispatcher", "backoff_delay"]

log = logging.getLogger("bridge.dispatch")

_IDLE_POLL = 30.0  # re-check the outbox this often even without a wake-up (clock jumps, missed events)
_PRUNE_EVERY = 300.0
_CLAIM_MAX = 32  # deliveries a lane claims at once when its pace lets them all go out now
# Deliveries a lane may have sent whose "delivered" is not on disk yet: a crash sends them again, so this (with
# the one on the wire) bounds the duplicates per lane after a kill -9. While notifications are waiting for
# their commit, one: their senders (Alertmanager) wait for an answer, a delivery a few milliseconds later
# harms no one, and a lane that sends ahead takes the interpreter from the requests.
IN_FLIGHT_MAX = 4
_DECODED_MAX = 512  # notifications kept decoded from intake for their first deliveries (a bound on memory)


def _forwards(channel: Channel) -> bool:
    """The channel sends a stored body as received (see Channel): it needs no decoded notification."""
    return getattr(channel, "render_body", None) is not None


def backoff_delay(attempts: int, initial: float, maximum: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: about initial·2^(n-1), capped, drawn from its upper half."""
    ceiling = min(maximum, initial * (2 ** max(0, attempts - 1)))
    return ceiling * (0.5 + 0.5 * rand())


class _Lane:
    """One destination: its channels, its pacing window and how long the platform asked us to wait."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.channels: dict[str, Channel] = {}
        self.sent: deque[float] = deque()  # send times within the pacing window
        self.blocked_until = 0.0
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.recording: set[asyncio.Future[None]] = set()  # sent; their "delivered" on its way to the outbox
        self.recorded = asyncio.Event()  # set as each of those is done: cheaper to wait on than the set itself

    @property
    def pace(self):
        for ch in self.channels.values():
            if ch.pace is not None:
                return ch.pace
        return None

    def ready_at(self) -> float:
        """Earliest time the next request may go: after any block, and within the pace window."""
        at = self.blocked_until
        pace = self.pace
        if pace is not None and len(self.sent) >= pace.messages:
            at = max(at, self.sent[-pace.messages] + pace.per_seconds)
        return at

    def allowance(self, now: float) -> int:
        """How many deliveries may go out now without waiting for the pace: the most to claim at once.

        Never more: a claimed delivery can no longer be superseded, so one that would wait for the pace stays
        in the outbox where a newer notification of its group can still replace it.
        """
        pace = self.pace
        if pace is None:
            return _CLAIM_MAX
        recent = sum(1 for t in self.sent if t > now - pace.per_seconds)
        return max(1, min(_CLAIM_MAX, pace.messages - recent))

    def record(self, when: float, result: Result) -> None:
        pace = self.pace
        self.sent.append(when)
        while len(self.sent) > max(1, pace.messages if pace else 1):
            self.sent.popleft()
        # The platform says the window is spent: wait for its reset rather than collect a 429.
        if result.remaining is not None and result.remaining <= 0 and result.reset_after:
            self.blocked_until = max(self.blocked_until, time.time() + result.reset_after)


class Dispatcher:
    """Runs one task per lane; wake it with `wake(channel)` after an enqueue; `stop(grace)` to finish."""

    def __init__(
        self,
        outbox: Outbox,
        metrics: BridgeMetrics,
        *,
        max_delivery_age: float = 24 * 3600.0,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
        prune_after: float = 3600.0,
        enrich: Callable[[Notification, int], Awaitable[Notification]] | None = None,
    ) -> None:
        self.outbox = outbox
        self.metrics = metrics
        self.max_delivery_age = max_delivery_age
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.prune_after = prune_after
        self.enrich = enrich  # adds charts and firing history (bridge.insight), within its own time budget
        self.channels: dict[str, Channel] = {}
        self._lanes: dict[str, _Lane] = {}
        self._stopping = asyncio.Event()
        self._retired: list[Channel] = []
        self._housekeeping: asyncio.Task[None] | None = None
        # notification id -> (the notification as intake validated it, deliveries yet to take it)
        self._decoded: dict[int, tuple[Notification, int]] = {}

    # ------------------------------------------------------------ lifecycle

    async def start(self, channels: Mapping[str, Channel]) -> None:
        for lane, until in (await self.outbox.lane_blocks()).items():
            self._lane(lane).blocked_until = until
        await self.set_channels(channels)
        self._housekeeping = asyncio.create_task(self._housekeep(), name="bridge-housekeeping")

    async def set_channels(self, channels: Mapping[str, Channel]) -> None:
        """Adopt a (new) set of channels: lanes for new destinations start, removed channels are dead-lettered."""
        old = self.channels
        self.channels = dict(channels)
        self.metrics.init_channels(self.channels)
        for lane in self._lanes.values():
            lane.channels = {}
        for name, ch in self.channels.items():
            self._lane(ch.lane).channels[name] = ch
        self._retired.extend(ch for name, ch in old.items() if self.channels.get(name) is not ch)
        removed = await self.outbox.dead_letter_channels_except(list(self.channels), "channel_removed")
        for delivery_id, channel in removed:
            self.metrics.deliveries.labels(channel, "dead_lettered").inc()
            self.metrics.dead_letters.labels(channel, "channel_removed").inc()
            log.warning("dead-lettered: channel not configured", extra={"delivery": delivery_id, "channel": channel})
        for lane in self._lanes.values():
            if lane.channels and (lane.task is None or lane.task.done()):
                lane.task = asyncio.create_task(self._run_lane(lane), name=f"bridge-lane-{lane.key}")
            lane.wake.set()

    def _lane(self, key: str) -> _Lane:
        if key not in self._lanes:
            self._lanes[key] = _Lane(key)
        return self._lanes[key]

    def remember(self, notification_id: int, notification: Notification, channels: Iterable[str]) -> None:
        """Keep intake's decoded notification for its deliveries to `channels` that render it: decoding the
        stored body again costs as much as intake's own decode (the largest item of a profile under load).
        None is kept for channels that forward the body as received: a kept notification of many alerts is
        hundreds of objects for the garbage collector to walk while it waits."""
        deliveries = sum(1 for name in channels if name in self.channels and not _forwards(self.channels[name]))
        if deliveries <= 0:
            return
        if len(self._decoded) >= _DECODED_MAX:  # deliveries are behind: the oldest will decode from the outbox
            del self._decoded[next(iter(self._decoded))]
        self._decoded[notification_id] = (notification, deliveries)

    def _decoded_notification(self, notification_id: int) -> Notification | None:
        kept = self._decoded.pop(notification_id, None)
        if kept is None:
            return None
        notification, left = kept
        if left > 1:
            self._decoded[notification_id] = (notification, left - 1)
        return notification

    def wake(self, channels: Iterable[str]) -> None:
        """New work for these channels."""
        for name in channels:
            ch = self.channels.get(name)
            if ch is not None:
                self._lanes[ch.lane].wake.set()

    async def stop(self, grace: float) -> None:
        """Take no new delivery; let those in flight finish within `grace` seconds; the rest stays pending."""
        self._stopping.set()
        for lane in self._lanes.values():
            lane.wake.set()
        tasks = [t for t in (lane.task for lane in self._lanes.values()) if t is not None]
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            tasks.append(self._housekeeping)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        recording = [t for lane in self._lanes.values() for t in lane.recording]
        if recording:  # sent already: their records must reach the outbox before it closes
            await asyncio.gather(*recording, return_exceptions=True)
        for ch in {id(c): c for c in [*self.channels.values(), *self._retired]}.values():
            with contextlib.suppress(Exception):
                await ch.close()

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep, cut short by stop() (and by `wake` if given)."""
        if seconds <= 0:
            return
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _housekeep(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(OutboxError):
                await self.outbox.prune(self.prune_after)
            await self._sleep(_PRUNE_EVERY)

    # ------------------------------------------------------------ one lane

    async def _run_lane(self, lane: _Lane) -> None:
        while not self._stopping.is_set() and lane.channels:
            names = list(lane.channels)
            try:
                # Wait for the pace (or a platform's block) before taking a delivery, not after: one taken is
                # no longer superseded by a newer notification of its group, and should go out now.
                wait = lane.ready_at() - time.time()
                if wait > 0:
                    await self._sleep(wait)
                    continue
                now = time.time()
                claimed = await self.outbox.claim_due(names, now, lane.allowance(now))
                if not claimed:
                    lane.wake.clear()
                    wake_at = await self.outbox.next_wake(names)
                    wait = _IDLE_POLL if wake_at is None else min(_IDLE_POLL, wake_at - time.time())
                    await self._sleep(wait, lane.wake)
                    continue
                await self._deliver_claimed(lane, claimed)
            except OutboxError:
                log.exception("outbox error in lane; retrying shortly", extra={"lane": lane.key})
                await self._sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the lane for good
                log.exception("unexpected error in lane", extra={"lane": lane.key})
                await self._sleep(1.0)

    async def _deliver_claimed(self, lane: _Lane, claimed: list[Delivery]) -> None:
        """Deliver in order; after one that does not go out (retry, dead letter) or on stop, release the rest
        unsent, so that they wait in the outbox, where a newer notification can still supersede them."""
        left = deque(claimed)
        try:
            while left and not self._stopping.is_set():
                while len(lane.recording) >= (1 if self.outbox.storing else IN_FLIGHT_MAX):
                    lane.recorded.clear()
                    await lane.recorded.wait()
                d = left.popleft()
                handed_off = False
                try:
                    handed_off = await self._deliver(lane, d)
                finally:
                    if not handed_off:
                        self._release(d)
                if not handed_off:
                    break
        finally:
            for d in left:
                self._release(d)

    def _release(self, d: Delivery) -> None:
        self.outbox.release(d.id)
        # After a reload the channel may live in another lane now, which waited for this one.
        self.wake([d.channel])

    async def _deliver(self, lane: _Lane, d: Delivery) -> bool:
        """Send what is left of `d`; True if it went out and its record is on the way (see `_record`)."""
        channel = lane.channels.get(d.channel)
        if channel is None:
            return False
        now = time.time()
        if now - d.queued_at > self.max_delivery_age:
            await self._dead(d, "expired", d.attempts)
            return False
        rendered = await self._render(channel, d)
        if rendered is None:
            return False
        notification, messages = rendered
        attempts = d.attempts
        refs = d.refs if d.refs is not None else await self.outbox.message_refs(d.channel, d.group_key)
        saved = False
        for index in range(min(d.parts_sent, len(messages)), len(messages)):
            message = messages[index]
            message.ref = refs.get(index + 1)
            wait = lane.ready_at() - time.time()
            if wait > 0:
                await self._sleep(wait)
            if self._stopping.is_set():
                return  # stays pending at this part
            attempts += 1
            self.metrics.delivery_series(d.channel).attempts.inc()
            result = await self._send(channel, message)
            lane.record(time.time(), result)
            if result.outcome is Outcome.DELIVERED:
                if result.ref and result.ref != message.ref:  # stored first: a retry then edits, never reposts
                    await self.outbox.save_message_ref(d.channel, d.group_key, index + 1, result.ref)
                    saved = True
                if message.truncated:
                    self.metrics.truncations.labels(d.channel).inc()
                if index + 1 < len(messages):  # the last part is recorded with the delivery, in one write
                    await self.outbox.part_sent(d.id, index + 1, attempts)
                continue
            if result.outcome is Outcome.PERMANENT:
                await self._dead(d, result.reason or "permanent", attempts)
                return False
            await self._retry(lane, channel, d, result, attempts)
            return False
        # Recorded without holding the lane: the next delivery goes out while this write waits for the next group
        # commit, and many deliveries share one. The claim on `d` holds until the write is on disk, so nothing
        # else takes it or a later notification of its group meanwhile; a crash before that sends it again.
        # The group's next incident starts a new message (a channel sending bodies as received keeps no refs).
        forget = bool(refs or saved) and notification is not None and notification.state == "resolved"
        refs_gone = (d.channel, d.group_key) if forget else None
        written = self.outbox.delivered(d.id, attempts, parts_sent=len(messages), forget_refs=refs_gone)
        lane.recording.add(written)
        written.add_done_callback(functools.partial(self._recorded, lane, d, attempts, len(messages), channel))
        return True

    async def _render(self, channel: Channel, d: Delivery) -> tuple[Notification | None, list[Message]] | None:
        """The notification (None if the channel sent its stored body undecoded) and the messages for `d`;
        None if it was dead-lettered instead (a stored body that no longer decodes, a render failure)."""
        notification = self._decoded_notification(d.notification_id)
        if notification is None:
            body = d.body if d.body is not None else await self.outbox.body(d.notification_id)
            # Decoding a body only to forward it unchanged cost a tenth of a webhook delivery's time.
            if _forwards(channel):
                return None, channel.render_body(body)
            try:
                notification = decode_notification(body)
            except PayloadError:
                await self._dead(d, "bad_stored_payload", d.attempts)
                return None
        if self.enrich is not None:
            notification = await self.enrich(notification, d.notification_id)
        try:
            return notification, channel.render(notification)
        except Exception:
            log.exception("render failed", extra={"channel": d.channel, "delivery": d.id})
            await self._dead(d, "render_error", d.attempts)
            return None

    def _recorded(
        self, lane: _Lane, d: Delivery, attempts: int, parts: int, channel: Channel, written: asyncio.Future[None]
    ) -> None:
        lane.recording.discard(written)
        lane.recorded.set()
        self._release(d)
        error = written.exception() if not written.cancelled() else asyncio.CancelledError()
        if error is not None:
            log.error("could not record a delivery; it will be sent again", extra={"delivery": d.id}, exc_info=error)
            return
        series = self.metrics.delivery_series(d.channel)
        series.delivered.inc()
        series.latency.observe(max(0.0, time.time() - d.received_at))
        if not log.isEnabledFor(logging.INFO):  # describe() parses the URL: not for a line nobody writes
            return
        log.info(
            "delivered",
            extra={
                "channel": d.channel,
                "delivery": d.id,
                "parts": parts,
                "attempts": attempts,
                "destination": channel.describe(),
            },
        )

    async def _send(self, channel: Channel, message: Message) -> Result:
        try:
            return await channel.send(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # channels should classify; a stray exception is treated as transient
            return Result(Outcome.RETRY, f"error_{type(exc).__name__}")

    async def _retry(self, lane: _Lane, channel: Channel, d: Delivery, result: Result, attempts: int) -> None:
        now = time.time()
        delay = backoff_delay(attempts, self.retry_initial, self.retry_max)
        if result.reason.startswith("http_429"):
            self.metrics.rate_limited.labels(d.channel).inc()
        if result.retry_after is not None:
            # Never sooner than the platform said (429, or a 503 with Retry-After), for this delivery and for
            # the whole destination; a little jitter so that lanes do not return in lockstep.
            delay = max(result.retry_after, 0.0) + min(1.0, 0.05 * result.retry_after) * random.random()
            lane.blocked_until = max(lane.blocked_until, now + result.retry_after)
            await self.outbox.block_lane(lane.key, lane.blocked_until)
        when = now + delay
        if when - d.queued_at > self.max_delivery_age:
            await self._dead(d, "expired", attempts)
            return
        await self.outbox.retry_at(d.id, when, attempts, result.reason)
        log.warning(
            "delivery failed, will retry",
            extra={
                "channel": d.channel,
                "delivery": d.id,
                "reason": result.reason,
                "attempts": attempts,
                "retry_in": round(delay, 3),
                "destination": channel.describe(),
            },
        )

    async def _dead(self, d: Delivery, reason: str, attempts: int) -> None:
        await self.outbox.dead_letter(d.id, reason, attempts)
        self.metrics.deliveries.labels(d.channel, "dead_lettered").inc()
        self.metrics.dead_letters.labels(d.channel, reason).inc()
        log.error(
            "dead-lettered", extra={"channel": d.channel, "delivery": d.id, "reason": reason, "attempts": attempts}
        )
