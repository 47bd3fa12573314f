"""The SQLite outbox: commit, dedupe, queue cap, per-group order, dead letters, reopen after a crash."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading

import pytest

import bridge.outbox as outbox_module
from bridge.outbox import Delivery, Outbox, OutboxError, QueueFull, dedupe_key
from bridge.payload import parse_notification
from tests.bridge.test_dispatch import payload


async def _enqueue(
    outbox: Outbox,
    group: str = "g1",
    channels=("a",),
    now: float = 1000.0,
    key: str | None = None,
    max_queue: int = 100,
):
    return await outbox.enqueue(
        route="default",
        status="firing",
        group_key=group,
        dedupe_key=key or f"{group}-{now}",
        body=b"{}",
        channels=list(channels),
        dedupe_window=120,
        max_queue=max_queue,
        now=now,
    )


async def next_due(outbox: Outbox, channels: list[str], now: float) -> Delivery | None:
    """Claim the first delivery due on these channels that is the head of its group (one of `claim_due`)."""
    claimed = await outbox.claim_due(channels, now, 1)
    return claimed[0] if claimed else None


@pytest.fixture
async def outbox(tmp_path):
    box = await Outbox.open(tmp_path)
    yield box
    await box.close()


async def test_enqueue_creates_one_delivery_per_channel(outbox):
    stored = await _enqueue(outbox, channels=("a", "b"))
    assert not stored.duplicate
    assert await outbox.counts() == {"pending": 2}
    stats = await outbox.pending_stats(now=1010.0)
    assert stats == {"a": (1, 10.0), "b": (1, 10.0)}


async def test_same_key_within_window_is_a_duplicate_and_after_it_is_not(outbox):
    assert not (await _enqueue(outbox, key="k", now=1000.0)).duplicate
    assert (await _enqueue(outbox, key="k", now=1100.0)).duplicate
    later = await _enqueue(outbox, key="k", now=1000.0 + 121)
    assert not later.duplicate
    # Stored again, and it replaces the first, still queued, delivery of its group.
    assert later.superseded == ("a",)
    assert await outbox.counts() == {"pending": 1, "superseded": 1}


async def test_queue_cap_refuses_and_stores_nothing(outbox):
    await _enqueue(outbox, channels=("a", "b"), max_queue=3)
    with pytest.raises(QueueFull):
        await _enqueue(outbox, group="g2", channels=("a", "b"), max_queue=3)
    assert await outbox.counts() == {"pending": 2}


async def test_queue_cap_counts_the_backlog_again_after_deliveries(outbox, monkeypatch):
    first = await _enqueue(outbox, channels=("a", "b"), max_queue=2)
    claimed = await outbox.claim_due(["a", "b"], now=2000.0, limit=10)
    for d in claimed:
        await outbox.delivered(d.id, 1)
        outbox.release(d.id)
    assert first.id is not None and await outbox.counts() == {"delivered": 2}
    # Within the recount interval the deliveries done are not yet taken off: the cap errs toward refusing.
    with pytest.raises(QueueFull):
        await _enqueue(outbox, group="g2", channels=("a", "b"), max_queue=2)
    monkeypatch.setattr(outbox_module, "_RECOUNT", 0.0)
    assert not (await _enqueue(outbox, group="g3", channels=("a", "b"), max_queue=2)).duplicate


async def test_storing_counts_notifications_waiting_for_their_commit(outbox):
    # The lanes hold back while it is above zero (test_dispatch): it must fall back once the answer is known,
    # refused notifications included.
    waiting = [asyncio.ensure_future(_enqueue(outbox, group=f"g{i}", max_queue=1)) for i in range(3)]
    await asyncio.sleep(0)
    assert outbox.storing == 3
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert sum(isinstance(r, QueueFull) for r in results) == 2
    assert outbox.storing == 0


async def test_next_due_keeps_each_group_in_order(outbox):
    await _enqueue(outbox, group="g1", now=1000.0)
    first = await next_due(outbox, ["a"], now=2000.0)
    assert first is not None and first.group_key == "g1"
    # A part of the g1 head is out when the next g1 notification arrives: that one must wait behind it.
    await outbox.part_sent(first.id, 1, 1)
    outbox.release(first.id)
    assert (await _enqueue(outbox, group="g1", now=1001.0)).superseded == ()
    await _enqueue(outbox, group="g2", now=1002.0)
    # The g1 head backs off; g2 may go.
    await outbox.retry_at(first.id, 5000.0, 1, "http_500")
    nxt = await next_due(outbox, ["a"], now=2000.0)
    assert nxt is not None and nxt.group_key == "g2"
    await outbox.delivered(nxt.id, 1)
    outbox.release(nxt.id)
    assert await next_due(outbox, ["a"], now=2000.0) is None
    assert await outbox.next_wake(["a"]) == 5000.0
    again = await next_due(outbox, ["a"], now=5000.0)
    assert again is not None and again.id == first.id and again.attempts == 1


async def test_a_claimed_delivery_is_handed_out_once_and_never_superseded(outbox):
    await _enqueue(outbox, group="g1", now=1000.0)
    held = await next_due(outbox, ["a"], now=2000.0)
    assert held is not None
    # Another lane asking (after a reload moved the channel) gets nothing while the first holds it.
    assert await next_due(outbox, ["a"], now=2000.0) is None
    assert (await _enqueue(outbox, group="g1", now=1001.0)).superseded == ()
    outbox.release(held.id)
    await outbox.delivered(held.id, 1)
    nxt = await next_due(outbox, ["a"], now=2000.0)
    assert nxt is not None and nxt.id != held.id


async def test_a_newer_notification_supersedes_queued_ones_of_its_group_per_channel(outbox):
    await _enqueue(outbox, group="g1", channels=("a", "b"), now=1000.0)
    await _enqueue(outbox, group="g2", channels=("a",), now=1000.5)
    backing_off = await next_due(outbox, ["b"], now=1000.0)
    await outbox.retry_at(backing_off.id, 3000.0, 1, "http_503")
    outbox.release(backing_off.id)
    # Only on channel a and b for g1; g2 is another group and stays.
    newer = await _enqueue(outbox, group="g1", channels=("a", "b"), now=1001.0)
    assert newer.superseded == ("a", "b")
    assert await outbox.counts() == {"pending": 3, "superseded": 2}
    assert (await outbox.pending_stats(now=1001.0))["a"][0] == 2


async def test_dead_letter_listed_and_retried_with_fresh_age(outbox):
    await _enqueue(outbox)
    d = await next_due(outbox, ["a"], now=1000.0)
    await outbox.part_sent(d.id, 1, 1)
    await outbox.dead_letter(d.id, "http_400", 2)
    outbox.release(d.id)
    [row] = await outbox.dead_letters()
    assert row["id"] == d.id and row["reason"] == "http_400" and row["channel"] == "a" and row["parts_sent"] == 1
    assert await outbox.retry_dead(999) is None
    assert await outbox.retry_dead(d.id, now=9000.0) == "a"
    again = await next_due(outbox, ["a"], now=9000.0)
    assert again.queued_at == 9000.0 and again.attempts == 0 and again.parts_sent == 1
    assert await outbox.dead_letters() == []


async def test_concurrent_writes_share_commits(outbox):
    stored = await asyncio.gather(*(_enqueue(outbox, group=f"g{i}", now=1000.0 + i) for i in range(50)))
    assert all(not s.duplicate for s in stored) and len({s.id for s in stored}) == 50
    assert await outbox.counts() == {"pending": 50}
    # They arrive before the first commit starts: a few transactions (here one) hold all 50.
    assert 1 <= outbox.commits < 10


async def test_a_failing_write_in_a_batch_fails_alone(outbox):
    results = await asyncio.gather(
        _enqueue(outbox, group="a", max_queue=1),
        _enqueue(outbox, group="b", max_queue=1),  # over the cap once "a" is in: refused
        _enqueue(outbox, group="c", channels=(), max_queue=1),  # no delivery: never over the cap
        return_exceptions=True,
    )
    assert not isinstance(results[0], Exception) and isinstance(results[1], QueueFull)
    assert not isinstance(results[2], Exception)
    assert await outbox.counts() == {"pending": 1}


async def test_a_commit_that_fails_fails_its_whole_batch_and_undoes_it(outbox):
    await _enqueue(outbox, group="before")
    # A foreign key checked only at COMMIT: the write itself succeeds, its transaction's commit does not.
    await outbox._run(lambda: outbox._db.executescript("PRAGMA foreign_keys = ON; PRAGMA defer_foreign_keys = ON"))
    orphan = (
        "INSERT INTO deliveries (notification_id, channel, group_key, next_attempt_at, queued_at)"
        " VALUES (999, 'a', 'x', 0, 0)"
    )
    results = await asyncio.gather(
        _enqueue(outbox, group="same-batch", max_queue=2), outbox._update(orphan), return_exceptions=True
    )
    assert all(isinstance(r, OutboxError) for r in results), results
    assert "FOREIGN KEY" in str(results[0])
    assert await outbox.counts() == {"pending": 1}  # neither write stands
    # The transaction was rolled back and the queue count put back: this one fits a cap of 2 and commits.
    assert not (await _enqueue(outbox, group="after", max_queue=2)).duplicate
    assert await outbox.counts() == {"pending": 2}


async def test_committed_rows_survive_reopen(tmp_path):
    box = await Outbox.open(tmp_path)
    await _enqueue(box, channels=("a", "b"))
    d = await next_due(box, ["a"], now=1000.0)
    await box.part_sent(d.id, 2, 2)
    # No close(): the process "dies"; a second connection must see the committed state (WAL).
    other = await Outbox.open(tmp_path)
    try:
        again = await next_due(other, ["a"], now=1000.0)
        assert again.id == d.id and again.parts_sent == 2
        assert await other.counts() == {"pending": 2}
    finally:
        await other.close()
        await box.close()
    mode = sqlite3.connect(tmp_path / "outbox.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_an_outbox_with_the_earlier_full_indexes_opens_with_its_queue_intact(tmp_path):
    box = await Outbox.open(tmp_path)
    await _enqueue(box, group="g1", channels=("a",))
    await box.close()
    db = sqlite3.connect(tmp_path / "outbox.db")
    with db:  # the indexes of the schema before the partial ones
        db.execute("DROP INDEX pending_groups")
        db.execute("DROP INDEX pending_queue")
        db.execute("CREATE INDEX deliveries_lane ON deliveries (state, channel, group_key, id)")
        db.execute("CREATE INDEX deliveries_queue ON deliveries (state, channel, id)")
    db.close()
    box = await Outbox.open(tmp_path)
    try:
        d = await next_due(box, ["a"], now=1000.0)
        assert d is not None and d.group_key == "g1"
    finally:
        await box.close()
    db = sqlite3.connect(tmp_path / "outbox.db")
    indexes = {
        r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries'")
    }
    db.close()
    assert indexes == {"pending_groups", "pending_queue", "deliveries_notification"}


async def test_disk_full_is_an_outbox_error(outbox):
    await _enqueue(outbox)
    await outbox._run(lambda: outbox._db.execute("PRAGMA max_page_count = 1"))
    with pytest.raises(OutboxError):
        await outbox.enqueue(
            route="default",
            status="firing",
            group_key="g9",
            dedupe_key="x",
            body=os.urandom(100_000),  # incompressible: stored as large as it is
            channels=["a"],
            dedupe_window=120,
            max_queue=100,
        )
    assert await outbox.counts() == {"pending": 1}


async def test_a_large_body_is_stored_compressed_and_read_back_as_received(tmp_path):
    box = await Outbox.open(tmp_path)
    big = json.dumps(payload("g1", alerts=20), indent=2).encode()
    older = json.dumps(payload("g2", alerts=20)).encode()
    small = json.dumps(payload("g3")).encode()
    common = {"route": "default", "status": "firing", "dedupe_window": 0.0, "max_queue": 100}
    try:
        for group, body in (("g1", big), ("g2", older), ("g3", small)):
            await box.enqueue(group_key=group, dedupe_key=group, body=body, channels=["a"], **common)
        # A body stored before compression existed (as received) reads as it was.
        await box._run(lambda: box._db.execute("UPDATE notifications SET body = ? WHERE group_key = 'g2'", (older,)))
        claimed = await box.claim_due(["a"], 10**10, 10)
        assert [d.body for d in claimed] == [big, older, small]
        assert [await box.body(d.notification_id) for d in claimed] == [big, older, small]
    finally:
        await box.close()
    db = sqlite3.connect(tmp_path / "outbox.db")
    sizes = dict(db.execute("SELECT group_key, length(body) FROM notifications").fetchall())
    db.close()
    assert sizes["g1"] < len(big) / 4 and sizes["g2"] == len(older) and sizes["g3"] == len(small)


async def test_prune_forgets_finished_work_but_keeps_dead_letters(outbox):
    await _enqueue(outbox, group="g1", now=1000.0)
    await _enqueue(outbox, group="g2", now=1000.0)
    d1 = await next_due(outbox, ["a"], now=1000.0)
    await outbox.delivered(d1.id, 1, now=1000.0)
    outbox.release(d1.id)
    d2 = await next_due(outbox, ["a"], now=1000.0)
    await outbox.dead_letter(d2.id, "http_400", 1, now=1000.0)
    assert await outbox.prune(60, now=5000.0) == 1
    assert await outbox.counts() == {"dead": 1}


async def test_prune_reads_notifications_by_index_not_by_scanning_their_bodies(outbox):
    # The prune runs in the outbox thread every few minutes: a scan of the notifications (whose receipt time is
    # stored after each body) and of the deliveries per old notification held every write for up to a second.
    await _enqueue(outbox, group="g1", now=1000.0)
    statements: list[str] = []
    outbox._db.set_trace_callback(statements.append)
    try:
        await outbox.prune(60, now=5000.0)
    finally:
        outbox._db.set_trace_callback(None)
    plans = [
        row[-1]
        for sql in statements
        if sql.lstrip().upper().startswith("DELETE FROM NOTIFICATIONS")
        for row in outbox._db.execute(f"EXPLAIN QUERY PLAN {sql}")
    ]
    assert plans and not [p for p in plans if p.startswith("SCAN")], plans


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(lambda b: b, True, id="identical"),
        pytest.param(lambda b: {**b, "receiver": "other", "unknown": 1}, True, id="other-fields-ignored"),
        pytest.param(lambda b: {**b, "status": "resolved"}, False, id="status"),
        pytest.param(lambda b: {**b, "groupKey": "other"}, False, id="group"),
        pytest.param(
            lambda b: {**b, "alerts": [{**b["alerts"][0], "startsAt": "2030-01-01T00:00:00Z"}]}, False, id="startsAt"
        ),
    ],
)
def test_dedupe_key(change, same):
    body = json.loads(json.dumps(payload()))
    a = dedupe_key("default", parse_notification(body))
    b = dedupe_key("default", parse_notification(change(body)))
    assert (a == b) is same


async def test_a_claim_runs_on_the_loop_unless_it_has_a_backlog_in_backoff_to_walk_past(outbox, monkeypatch):
    # Each delivery its own group, so every one is the head of its group; all but the last two backing off.
    await asyncio.gather(*(_enqueue(outbox, group=f"g{i}", max_queue=10_000) for i in range(2000)))
    await outbox._update("UPDATE deliveries SET next_attempt_at = 9999 WHERE id <= 1998")
    handed = []
    submit = outbox._executor.submit
    monkeypatch.setattr(outbox._executor, "submit", lambda fn, *a: handed.append(fn) or submit(fn, *a))

    assert [d.id for d in await outbox.claim_due(["a"], now=10_000.0, limit=2)] == [1, 2]
    assert handed == []  # quick: done on the loop
    for d in (1, 2):
        outbox.release(d)
    claimed = await outbox.claim_due(["a"], now=2000.0, limit=2)
    assert [d.id for d in claimed] == [1999, 2000] and claimed[0].body == b"{}"
    assert len(handed) == 1  # 1,998 rows to walk past: interrupted on the loop, done in the outbox thread
    assert await outbox.claim_due(["a"], now=2000.0, limit=2) == []  # and claimed there


async def test_the_writes_that_walk_a_whole_table_run_in_the_outbox_thread(outbox):
    await _enqueue(outbox, group="g1", channels=("a", "gone"))
    ran: list[tuple[str, str]] = []  # (thread, statement) for every statement SQLite runs from now on
    outbox._db.set_trace_callback(lambda sql: ran.append((threading.current_thread().name, sql.split()[0])))
    await _enqueue(outbox, group="g2")
    # A notification: its statements on the loop, only the commit in the outbox thread.
    assert {verb for thread, verb in ran if thread != "MainThread"} == {"COMMIT"}
    assert {"INSERT", "UPDATE"} <= {verb for thread, verb in ran if thread == "MainThread"}
    ran.clear()
    assert [channel for _, channel in await outbox.dead_letter_channels_except(["a"], "channel_removed")] == ["gone"]
    assert await outbox.prune(0.0, now=5000.0) == 0
    # Each a transaction of its own, statements and commit, in the outbox thread.
    assert ran and all(thread != "MainThread" for thread, _ in ran)
    assert {"BEGIN", "UPDATE", "DELETE", "COMMIT"} <= {verb for _, verb in ran}
    assert await outbox.counts() == {"pending": 2, "dead": 1}
