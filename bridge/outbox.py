"""The durable outbox: notifications and their deliveries in SQLite (WAL), group commit.

A notification is committed here before intake answers 2xx. Each (notification, channel) pair is one delivery
row that records attempts, when to try next and how many parts of a split message went out, so that after a
crash (kill -9 included) delivery resumes at the next part. Given-up deliveries stay as dead letters.

Writes are group-committed: every write that arrives while a commit is on its way to disk waits and goes into
the next transaction together with the others, so one fsync serves them all and each caller hears back only
once the transaction holding its write is on disk (synchronous=FULL); a write that fails undoes only itself.

The writes' statements run on the event loop and only the commit (the fsync) and the reads in the outbox
thread. In that thread every statement gave the interpreter lock up and had to win it back from the busy loop:
a write of 15 µs took 110 µs there under load, and the loop paid for the hand-overs too (docs/performance.md).
The price: another process holding the database's write lock (an operator's `sqlite3` shell in a transaction)
now stalls the loop, up to the busy timeout, where before it stalled only the writes; nothing of the bridge's
own does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from bridge.model import Notification

__all__ = ["CorruptOutbox", "Delivery", "Outbox", "OutboxError", "QueueFull", "StoredNotification", "dedupe_key"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    group_key TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_dedupe ON notifications (dedupe_key, received_at);
-- The prune's: old notifications without reading past their bodies (received_at is stored after them), and
-- whether any delivery still refers to one, without a scan of the deliveries per notification.
CREATE INDEX IF NOT EXISTS notifications_received ON notifications (received_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications (id),
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead | superseded
    attempts INTEGER NOT NULL DEFAULT 0,
    parts_sent INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    queued_at REAL NOT NULL,  -- age for BRIDGE_MAX_DELIVERY_AGE; reset when a dead letter is retried
    last_reason TEXT NOT NULL DEFAULT '',
    finished_at REAL
);
-- Indexes of pending deliveries only: the queue stays small beside the history, and a delivery done leaves
-- them instead of moving within them (earlier full indexes led by `state`, dropped here: two index rows
-- deleted and two inserted per delivery were a third of the outbox's write time under load).
DROP INDEX IF EXISTS deliveries_lane;
DROP INDEX IF EXISTS deliveries_queue;
CREATE INDEX IF NOT EXISTS pending_groups ON deliveries (channel, group_key, id) WHERE state = 'pending';
-- A lane's next delivery in arrival order without sorting the whole backlog.
CREATE INDEX IF NOT EXISTS pending_queue ON deliveries (channel, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_notification ON deliveries (notification_id);
CREATE TABLE IF NOT EXISTS lanes (lane TEXT PRIMARY KEY, blocked_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
-- The platform message of each part of an alert group's notification, per channel: later ones edit it.
CREATE TABLE IF NOT EXISTS message_refs (
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    part INTEGER NOT NULL,
    ref TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (channel, group_key, part)
);
"""

# The oldest pending delivery of each (channel, alert group): only it may be sent, which keeps a group in order.
_HEADS = """
FROM deliveries d WHERE d.state = 'pending' AND d.channel IN ({names})
AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.state = 'pending' AND e.channel = d.channel
                AND e.group_key = d.group_key AND e.id < d.id)
"""


_PACK_FROM = 1024  # bytes: a smaller body fits a page as it is
_RECOUNT = 1.0  # seconds between counts of the pending deliveries (BRIDGE_MAX_QUEUE)
_REF_KEEP = 7 * 24 * 3600.0  # message references outlive finished deliveries by a week
# SQLite VM instructions a read may run on the loop before it is interrupted and done in the outbox thread: a
# claim takes about 1,000; one that has to walk past a backlog in backoff takes more (1.6 million past 100,000).
_LOOP_READ_STEPS = 10_000


class OutboxError(RuntimeError):
    """The outbox could not store or read (disk full, read-only, corrupt): intake answers 503."""


class _TooLong(Exception):
    """A read on the loop ran past _LOOP_READ_STEPS and was interrupted: it is done in the outbox thread."""


class _WriteFailed(Exception):
    """A write of a batch done without savepoints failed: the batch is done again with them."""


class QueueFull(OutboxError):
    """More pending deliveries than BRIDGE_MAX_QUEUE: intake answers 503 so Alertmanager retries later."""


class CorruptOutbox(OutboxError):
    """`outbox.db` is not a sound SQLite database; it was moved aside (`moved_to`) and the start stops."""

    def __init__(self, path: Path, moved_to: Path | None, problem: str) -> None:
        where = f"moved aside to {moved_to}" if moved_to else "left in place (it could not be moved)"
        super().__init__(
            f"outbox {path} is corrupt ({problem}); {where}. The next start creates an empty outbox: see the "
            "runbook 'Bridge outbox corrupt' for recovering the notifications it held"
        )
        self.path = path
        self.moved_to = moved_to


# SQLite's primary result codes for a damaged file or one that is not a database at all.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


@dataclass(frozen=True)
class StoredNotification:
    id: int | None  # None for a duplicate
    duplicate: bool
    superseded: tuple[str, ...] = ()  # a channel per older queued delivery of the same group this one replaced


@dataclass(frozen=True)
class Delivery:
    id: int
    notification_id: int
    channel: str
    group_key: str
    attempts: int
    parts_sent: int
    next_attempt_at: float
    queued_at: float
    received_at: float
    body: bytes | None = None  # the notification's body, read with the claim (one read, not two)
    refs: dict[int, str] | None = None  # its group's message refs on this channel, read with the claim too


_DELIVERY_COLUMNS = (
    "d.id, d.notification_id, d.channel, d.group_key, d.attempts, d.parts_sent, d.next_attempt_at, d.queued_at,"
    " (SELECT received_at FROM notifications n WHERE n.id = d.notification_id)"
)


class Outbox:
    """Async facade over one SQLite connection, used by one side at a time (`_turn`): a batch of writes on the
    loop, then its commit in the outbox thread; or, between transactions, a read (in that thread; a claim on the
    loop) or a write that walks a whole table (in that thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._writes: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()  # the connection: a batch from its first write to its commit, or one read
        self.commits = 0  # transactions committed by the group commit (each holding one or more writes)
        self.storing = 0  # notifications waiting for their commit: a sender is waiting for its answer
        # Pending deliveries for BRIDGE_MAX_QUEUE (kept by the writes): counted at most every _RECOUNT seconds, since
        # a count walks the whole backlog; in between, what intake adds is added to it. Deliveries done since
        # are not taken off, so the cap errs toward refusing early, by at most one interval's deliveries.
        self._pending: int | None = None
        self._pending_at = 0.0
        # Deliveries a lane is working on: never handed out twice, never superseded under the sender's feet.
        self._claimed: set[int] = set()
        self._claims_lock = threading.Lock()  # a long claim is taken in the outbox thread, the rest on the loop

    @classmethod
    async def open(cls, data_dir: Path) -> Outbox:
        """Open (creating if needed) `outbox.db` under `data_dir`; CorruptOutbox if the file is damaged."""
        outbox = cls(Path(data_dir) / "outbox.db")
        await outbox._run(outbox._open)
        return outbox

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before intake answers 2xx (NORMAL could lose the last ones on power loss).
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            (check,) = db.execute("PRAGMA quick_check(1)").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            db.close()
            code = getattr(exc, "sqlite_errorcode", None)
            damaged = code is None or code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
            if type(exc) is sqlite3.DatabaseError and damaged:  # not OperationalError: permissions, locks
                raise CorruptOutbox(self.path, _move_aside(self.path), str(exc)) from None
            raise
        self._db = db

    async def _run(self, fn: Callable[..., T], *args: Any, brief: bool = False) -> T:
        """Run `fn` in the outbox thread when no transaction is open: a read sees only what is committed.

        `brief`: a read that is quick as a rule runs on the loop instead, where it costs no hand-over of the
        interpreter lock; if it runs long after all, it is interrupted there and done in the thread.
        """
        loop = asyncio.get_running_loop()
        async with self._turn:
            try:
                if brief:
                    with contextlib.suppress(_TooLong):
                        return self._briefly(fn, *args)
                return await loop.run_in_executor(self._executor, fn, *args)
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {type(exc).__name__}: {exc}") from exc

    def _briefly(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._db is not None
        self._db.set_progress_handler(_interrupt, _LOOP_READ_STEPS)
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_INTERRUPT:
                raise _TooLong from None
            raise
        finally:
            self._db.set_progress_handler(None, 0)

    async def close(self) -> None:
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)

        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._run(_close)
        self._executor.shutdown(wait=True)

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run `fn` in the next group commit; the future is done once that transaction is on disk.

        An exception from `fn` undoes only its own write and is set on the future; a failed commit fails every
        write of its batch, so nobody hears "stored" for what is not.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._writes.append((fn, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_batches(), name="outbox-group-commit")
        return future

    async def _commit_batches(self) -> None:
        loop = asyncio.get_running_loop()
        while self._writes:
            # One turn of the loop first: requests already read reach their write and join this batch. Fewer,
            # larger commits: less fsync per notification (1.07x the intake at 1 alert, 1.15x at 20).
            await asyncio.sleep(0)
            async with self._turn:
                batch, self._writes = self._writes, []
                pending = self._pending
                try:
                    results = self._write([fn for fn, _ in batch])
                    await loop.run_in_executor(self._executor, self._commit)
                    self.commits += 1
                except Exception as exc:
                    self._pending = pending  # as before the writes now undone
                    results = [(False, _as_outbox_error(exc))] * len(batch)
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():  # the caller went away; its write stands (or not) all the same
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def _apart(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write that may walk a whole table (the prune scans every finished delivery: about 30 ms per 360,000
        here): its own transaction, in the outbox thread, so that the loop does not stop for it."""

        def tx() -> T:
            assert self._db is not None
            self._db.execute("BEGIN IMMEDIATE")
            try:
                value = fn(self._db)
            except BaseException:
                self._undo()
                raise
            self._commit()
            return value

        return await self._run(tx)

    def _write(self, fns: Sequence[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
        """Begin a transaction and do a batch of writes in it (on the loop); `_commit` ends it.

        Done first without savepoints (two statements fewer per write); only if a write fails is the batch rolled
        back and done again with a savepoint per write, so that the failure undoes only its own write.
        """
        if self._db is None:
            raise OutboxError("outbox is closed")
        try:
            return self._transaction(fns, savepoints=False)
        except _WriteFailed:
            return self._transaction(fns, savepoints=True)

    def _transaction(
        self, fns: Sequence[Callable[[sqlite3.Connection], Any]], *, savepoints: bool
    ) -> list[tuple[bool, Any]]:
        assert self._db is not None
        db = self._db
        results: list[tuple[bool, Any]] = []
        pending = self._pending
        db.execute("BEGIN IMMEDIATE")
        try:
            for fn in fns:
                if savepoints:
                    db.execute("SAVEPOINT w")
                try:
                    value = fn(db)
                except (sqlite3.Error, OutboxError, ValueError) as exc:
                    if not db.in_transaction:  # SQLite rolled the whole transaction back (disk full, I/O)
                        raise
                    if not savepoints:
                        raise _WriteFailed from exc
                    db.execute("ROLLBACK TO w")
                    db.execute("RELEASE w")
                    results.append((False, _as_outbox_error(exc)))
                    continue
                if savepoints:
                    db.execute("RELEASE w")
                results.append((True, value))
        except BaseException:
            self._pending = pending  # as before the writes now undone
            self._undo()
            raise
        return results

    def _commit(self) -> None:
        """Commit the open transaction (in the outbox thread: the fsync blocks); undo it if that fails."""
        assert self._db is not None
        try:
            self._db.execute("COMMIT")
        except BaseException:
            self._undo()
            raise

    def _undo(self) -> None:
        """Roll back the open transaction, unless SQLite already has (disk full, I/O error)."""
        assert self._db is not None
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # ------------------------------------------------------------ intake

    async def enqueue(
        self,
        *,
        route: str,
        status: str,
        group_key: str,
        dedupe_key: str,
        body: bytes,
        channels: Sequence[str],
        dedupe_window: float,
        max_queue: int,
        now: float | None = None,
    ) -> StoredNotification:
        """Store a notification and one delivery per channel; or recognise it as a repeat.

        An older delivery of the same group still queued for one of these channels (not being sent, no part
        out yet) is superseded: kept as `superseded`, never sent, since the new one carries the group's
        latest state.
        """
        now = time.time() if now is None else now

        def tx(db: sqlite3.Connection) -> StoredNotification:
            seen = db.execute(
                "SELECT 1 FROM notifications WHERE dedupe_key = ? AND received_at >= ? LIMIT 1",
                (dedupe_key, now - dedupe_window),
            ).fetchone()
            if seen:
                return StoredNotification(None, True)
            if self._pending is None or time.monotonic() - self._pending_at > _RECOUNT:
                (self._pending,) = db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()
                self._pending_at = time.monotonic()
            pending = self._pending
            if channels and pending + len(channels) > max_queue:
                raise QueueFull(f"outbox holds {pending} pending deliveries (BRIDGE_MAX_QUEUE {max_queue})")
            cur = db.execute(
                "INSERT INTO notifications (route, status, group_key, dedupe_key, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (route, status, group_key, dedupe_key, _pack(body), now),
            )
            nid = cur.lastrowid
            superseded = self._supersede(db, group_key, channels, nid, now) if channels else ()
            db.executemany(
                "INSERT INTO deliveries (notification_id, channel, group_key, next_attempt_at, queued_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(nid, ch, group_key, now, now) for ch in channels],
            )
            self._pending = pending + len(channels) - len(superseded)
            return StoredNotification(nid, False, superseded)

        self.storing += 1
        try:
            return await self._submit(tx)
        finally:
            self.storing -= 1

    def _supersede(
        self, db: sqlite3.Connection, group_key: str, channels: Sequence[str], by: int, now: float
    ) -> tuple[str, ...]:
        with self._claims_lock:
            claimed = tuple(self._claimed)
        rows = db.execute(
            f"UPDATE deliveries SET state = 'superseded', finished_at = ?, last_reason = ?"
            f" WHERE state = 'pending' AND group_key = ? AND parts_sent = 0"
            f" AND channel IN ({','.join('?' * len(channels))}) AND id NOT IN ({','.join('?' * len(claimed))})"
            " RETURNING channel",
            (now, f"superseded by notification {by}", group_key, *channels, *claimed),
        ).fetchall()
        return tuple(sorted(r[0] for r in rows))

    async def writable(self) -> bool:
        """True if a write commits now (readiness)."""

        def tx(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('ready_check', ?)", (str(time.time()),))

        try:
            await self._submit(tx)
        except OutboxError:
            return False
        return True

    # ------------------------------------------------------------ dispatch

    async def claim_due(self, channels: Sequence[str], now: float, limit: int) -> list[Delivery]:
        """Claim up to `limit` deliveries due on these channels, in arrival order, each the head of its group.

        A claimed delivery is handed out to no one else, and not superseded, until `release`: after a reload
        that moved a channel to a new lane, the new lane waits for the old one to finish what it holds instead
        of sending it too. Several at a time save a turn at the outbox per delivery, which waits behind the
        group commit in progress. On the loop as a rule (see `_run`).
        """
        if not channels:
            return []
        names = ",".join("?" * len(channels))
        heads = _HEADS.format(names=names)

        def q() -> list[Delivery]:
            assert self._db is not None
            with self._claims_lock:
                claimed = tuple(self._claimed)
            sql = (
                f"SELECT {_DELIVERY_COLUMNS}, (SELECT body FROM notifications n WHERE n.id = d.notification_id)"
                f" {heads} AND d.next_attempt_at <= ?"
                f" AND d.id NOT IN ({','.join('?' * len(claimed))}) ORDER BY d.id LIMIT ?"
            )
            rows = self._db.execute(sql, (*channels, now, *claimed, limit)).fetchall()
            refs = _message_refs(self._db, {(row[2], row[3]) for row in rows})
            deliveries = [Delivery(*row[:-1], _unpack(row[-1]), refs.get((row[2], row[3]), {})) for row in rows]
            with self._claims_lock:
                self._claimed.update(d.id for d in deliveries)
            return deliveries

        return await self._run(q, brief=True)

    def release(self, delivery_id: int) -> None:
        """The lane is done with this delivery (sent, rescheduled, dead-lettered or left for later)."""
        with self._claims_lock:
            self._claimed.discard(delivery_id)

    async def next_wake(self, channels: Sequence[str]) -> float | None:
        """When the earliest group head on these channels becomes due; None when nothing is pending."""
        if not channels:
            return None
        names = ",".join("?" * len(channels))
        sql = f"SELECT MIN(d.next_attempt_at) {_HEADS.format(names=names)}"

        def q() -> float | None:
            assert self._db is not None
            return self._db.execute(sql, tuple(channels)).fetchone()[0]

        return await self._run(q)

    async def body(self, notification_id: int) -> bytes:
        def q() -> bytes:
            assert self._db is not None
            row = self._db.execute("SELECT body FROM notifications WHERE id = ?", (notification_id,)).fetchone()
            if row is None:
                raise OutboxError(f"notification {notification_id} is gone")
            return _unpack(row[0])

        return await self._run(q)

    async def _update(self, sql: str, *args: Any) -> int:
        def tx(db: sqlite3.Connection) -> int:
            return db.execute(sql, args).rowcount

        return await self._submit(tx)

    async def part_sent(self, delivery_id: int, parts_sent: int, attempts: int) -> None:
        await self._update(
            "UPDATE deliveries SET parts_sent = ?, attempts = ? WHERE id = ?", parts_sent, attempts, delivery_id
        )

    async def retry_at(self, delivery_id: int, when: float, attempts: int, reason: str) -> None:
        await self._update(
            "UPDATE deliveries SET next_attempt_at = ?, attempts = ?, last_reason = ? WHERE id = ?",
            when,
            attempts,
            reason,
            delivery_id,
        )

    def delivered(
        self,
        delivery_id: int,
        attempts: int,
        now: float | None = None,
        parts_sent: int | None = None,
        *,
        forget_refs: tuple[str, str] | None = None,
    ) -> asyncio.Future[None]:
        """Mark delivered (with `parts_sent`, the count of the last part too, in the same write).

        `forget_refs` (channel, group key): the group resolved, so its next notification starts a new message;
        forgotten in the same write, so that no later delivery of the group sees the delivery done but the
        references still there.
        """
        finished = time.time() if now is None else now

        def tx(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = ?, finished_at = ?,"
                " parts_sent = COALESCE(?, parts_sent) WHERE id = ?",
                (attempts, finished, parts_sent, delivery_id),
            )
            if forget_refs is not None:
                db.execute("DELETE FROM message_refs WHERE channel = ? AND group_key = ?", forget_refs)

        return self._submit(tx)  # a future, not a coroutine: the dispatcher goes on without waiting for it

    async def dead_letter(self, delivery_id: int, reason: str, attempts: int, now: float | None = None) -> None:
        await self._update(
            "UPDATE deliveries SET state = 'dead', last_reason = ?, attempts = ?, finished_at = ? WHERE id = ?",
            reason,
            attempts,
            time.time() if now is None else now,
            delivery_id,
        )

    async def dead_letter_channels_except(self, keep: Sequence[str], reason: str) -> list[tuple[int, str]]:
        """Dead-letter pending deliveries of channels no longer configured; returns (id, channel) of each."""
        names = ",".join("?" * len(keep)) or "''"

        def tx(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute(
                f"SELECT id, channel FROM deliveries WHERE state = 'pending' AND channel NOT IN ({names})", tuple(keep)
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET state = 'dead', last_reason = ?, finished_at = ? WHERE id = ?",
                [(reason, time.time(), r[0]) for r in rows],
            )
            return [(r[0], r[1]) for r in rows]

        return await self._apart(tx)

    async def lane_blocks(self) -> dict[str, float]:
        def q() -> dict[str, float]:
            assert self._db is not None
            return dict(self._db.execute("SELECT lane, blocked_until FROM lanes").fetchall())

        return await self._run(q)

    async def block_lane(self, lane: str, until: float) -> None:
        """Persist a platform's "not before" so a restart does not send early either."""
        await self._update("INSERT OR REPLACE INTO lanes (lane, blocked_until) VALUES (?, ?)", lane, until)

    # ------------------------------------------------------------ message references (one message per group)

    async def message_refs(self, channel: str, group_key: str) -> dict[int, str]:
        """The platform messages posted for this alert group on this channel: part -> reference."""

        def q() -> dict[int, str]:
            assert self._db is not None
            return _message_refs(self._db, {(channel, group_key)}).get((channel, group_key), {})

        return await self._run(q)

    async def save_message_ref(self, channel: str, group_key: str, part: int, ref: str) -> None:
        await self._update(
            "INSERT OR REPLACE INTO message_refs (channel, group_key, part, ref, updated_at) VALUES (?, ?, ?, ?, ?)",
            channel,
            group_key,
            part,
            ref,
            time.time(),
        )

    # ------------------------------------------------------------ dead letters and stats

    async def dead_letters(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        def q() -> list[dict[str, Any]]:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT d.id, d.notification_id, d.channel, d.last_reason, d.attempts, d.parts_sent, d.finished_at,"
                " n.route, n.status, n.group_key, n.received_at FROM deliveries d"
                " JOIN notifications n ON n.id = d.notification_id WHERE d.state = 'dead'"
                " ORDER BY d.id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            keys = (
                "id",
                "notification_id",
                "channel",
                "reason",
                "attempts",
                "parts_sent",
                "dead_at",
                "route",
                "status",
                "group_key",
                "received_at",
            )
            return [dict(zip(keys, r, strict=True)) for r in rows]

        return await self._run(q)

    async def retry_dead(
        self, delivery_id: int, channels: Collection[str] | None = None, now: float | None = None
    ) -> str | None:
        """Put a dead letter back in the queue (attempts and age start over); its channel, or None if no such.

        With `channels`, a dead letter of any other channel is left as it is (its channel is still returned).
        """
        now = time.time() if now is None else now

        def tx(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT channel FROM deliveries WHERE id = ? AND state = 'dead'", (delivery_id,)
            ).fetchone()
            if row is None or (channels is not None and row[0] not in channels):
                return None if row is None else row[0]
            db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, queued_at = ?,"
                " last_reason = 'retried', finished_at = NULL WHERE id = ?",
                (now, now, delivery_id),
            )
            return row[0]

        return await self._submit(tx)

    async def pending_stats(self, now: float | None = None) -> dict[str, tuple[int, float]]:
        """Per channel: (pending deliveries, age in seconds of the oldest one since receipt)."""
        now = time.time() if now is None else now

        def q() -> dict[str, tuple[int, float]]:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT d.channel, COUNT(*), MIN(n.received_at) FROM deliveries d"
                " JOIN notifications n ON n.id = d.notification_id WHERE d.state = 'pending' GROUP BY d.channel"
            ).fetchall()
            return {ch: (count, max(0.0, now - oldest)) for ch, count, oldest in rows}

        return await self._run(q)

    async def counts(self) -> dict[str, int]:
        """Deliveries by state (for tests and check tools)."""

        def q() -> dict[str, int]:
            assert self._db is not None
            return dict(self._db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())

        return await self._run(q)

    async def prune(self, keep_seconds: float, now: float | None = None) -> int:
        """Forget delivered and superseded deliveries and notifications older than `keep_seconds`; dead letters
        stay."""
        cutoff = (time.time() if now is None else now) - keep_seconds

        def tx(db: sqlite3.Connection) -> int:
            n = db.execute(
                "DELETE FROM deliveries WHERE state IN ('delivered', 'superseded') AND finished_at < ?", (cutoff,)
            ).rowcount
            # A group silent this long (a lost resolve) starts a new message when it comes back.
            db.execute("DELETE FROM message_refs WHERE updated_at < ?", (cutoff - _REF_KEEP,))
            db.execute(
                "DELETE FROM notifications WHERE received_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id)",
                (cutoff,),
            )
            return n

        return await self._apart(tx)


def dedupe_key(route: str, notification: Notification) -> str:
    """What makes two notifications "the same": route, groupKey, status, and each alert's identity and times.

    Alertmanager's retries and HA peers send exactly this again; a reminder at repeat_interval does too, so
    the dedupe window must stay shorter than repeat_interval (2m against Alertmanager's 4h default).
    """
    alerts = sorted(
        (
            alert.fingerprint or orjson.dumps(alert.labels, option=orjson.OPT_SORT_KEYS).decode(),
            alert.status,
            alert.starts_at.timestamp(),
            alert.ends_at.timestamp() if alert.ends_at else 0.0,
        )
        for alert in notification.alerts
    )
    material = orjson.dumps([route, notification.group_key, notification.status, alerts])
    return hashlib.sha256(material).hexdigest()


def _pack(body: bytes) -> bytes:
    """A body as stored: zlib-compressed when that pays. An Alertmanager payload is repetitive JSON (a 20-alert
    one shrinks about sixfold): fewer WAL pages per commit, rarer checkpoints, a smaller file (12 µs for a
    7 KB body at level 1)."""
    if len(body) < _PACK_FROM:
        return body
    packed = zlib.compress(body, 1)
    return packed if len(packed) < len(body) else body


def _unpack(stored: bytes) -> bytes:
    """The body as received. Told apart by the first byte: zlib's header is 0x78, which no JSON text starts with
    (an object, after optional whitespace), so bodies stored before compression read as they are."""
    return zlib.decompress(stored) if stored[:1] == b"\x78" else stored


def _message_refs(db: sqlite3.Connection, groups: set[tuple[str, str]]) -> dict[tuple[str, str], dict[int, str]]:
    """Part -> platform reference for each (channel, group key) that has any: one query for a whole claim."""
    found: dict[tuple[str, str], dict[int, str]] = {}
    if not groups:
        return found
    keys = ",".join(["(?, ?)"] * len(groups))
    sql = f"SELECT channel, group_key, part, ref FROM message_refs WHERE (channel, group_key) IN (VALUES {keys})"
    for channel, group_key, part, ref in db.execute(sql, [v for g in groups for v in g]):
        found.setdefault((channel, group_key), {})[part] = ref
    return found


def _interrupt() -> bool:
    return True  # SQLite's progress handler: a true answer interrupts the statement


def _as_outbox_error(exc: Exception) -> OutboxError:
    return exc if isinstance(exc, OutboxError) else OutboxError(f"outbox {type(exc).__name__}: {exc}")


def _move_aside(path: Path) -> Path | None:
    """Rename a damaged database (and its -wal/-shm) to a new name beside it, never over an existing file."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        target = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        if any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-shm")):
            continue
        try:
            os.link(path, target)  # fails if the name was taken meanwhile: never overwrites
        except FileExistsError:
            continue
        except OSError:
            return None
        os.unlink(path)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                os.rename(side, f"{target}{suffix}")
        return target
    return None
