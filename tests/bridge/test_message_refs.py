"""The outbox's message references: per channel, alert group and part; kept across a reopen; forgotten."""

from __future__ import annotations

import time

from bridge.outbox import Outbox
from tests.bridge.test_outbox import next_due


async def test_references_per_channel_group_and_part_survive_a_reopen(tmp_path):
    box = await Outbox.open(tmp_path)
    await box.save_message_ref("discord", "g1", 1, "1001")
    await box.save_message_ref("discord", "g1", 2, "1002")
    await box.save_message_ref("slack", "g1", 1, "C1/1.000100")
    await box.save_message_ref("discord", "g1", 1, "1003")  # posted again (the old one was deleted)
    await box.close()
    box = await Outbox.open(tmp_path)
    try:
        assert await box.message_refs("discord", "g1") == {1: "1003", 2: "1002"}
        assert await box.message_refs("slack", "g1") == {1: "C1/1.000100"}
        assert await box.message_refs("discord", "g2") == {}
        stored = await box.enqueue(
            route="default", status="resolved", group_key="g1", dedupe_key="k", body=b"{}", channels=["discord"],
            dedupe_window=120.0, max_queue=100,
        )  # fmt: skip
        resolve = await next_due(box, ["discord"], time.time())
        assert resolve is not None and resolve.notification_id == stored.id
        # The resolve's delivery forgets the group's references in the same write that records it.
        await box.delivered(resolve.id, 1, forget_refs=("discord", "g1"))
        assert await box.message_refs("discord", "g1") == {}
        assert (await box.counts())["delivered"] == 1
        assert await box.message_refs("slack", "g1") == {1: "C1/1.000100"}
        # A group silent for more than a week (its resolve lost) starts over; a recent one is kept.
        await box.prune(3600, now=time.time() + 8 * 24 * 3600)
        assert await box.message_refs("slack", "g1") == {}
    finally:
        await box.close()


async def test_recent_references_survive_pruning(tmp_path):
    box = await Outbox.open(tmp_path)
    try:
        await box.save_message_ref("discord", "g1", 1, "1001")
        await box.prune(3600, now=time.time() + 2 * 3600)
        assert await box.message_refs("discord", "g1") == {1: "1001"}
    finally:
        await box.close()


async def test_a_claimed_delivery_carries_its_groups_refs_on_its_channel(tmp_path):
    box = await Outbox.open(tmp_path)
    try:
        await box.save_message_ref("discord", "g1", 1, "1001")
        await box.save_message_ref("slack", "g1", 1, "C1/1.000100")
        common = {"route": "default", "status": "firing", "body": b"{}", "dedupe_window": 0.0, "max_queue": 100}
        await box.enqueue(group_key="g1", dedupe_key="k1", channels=["discord"], **common)
        await box.enqueue(group_key="g2", dedupe_key="k2", channels=["slack"], **common)
        first = await next_due(box, ["discord"], time.time() + 1)
        other = await next_due(box, ["slack"], time.time() + 1)
        assert (first.group_key, first.refs) == ("g1", {1: "1001"})  # not the Slack channel's ref of g1
        assert (other.group_key, other.refs) == ("g2", {})
    finally:
        await box.close()


async def test_one_claim_of_several_groups_gives_each_its_own_refs(tmp_path):
    box = await Outbox.open(tmp_path)
    try:
        await box.save_message_ref("discord", "g1", 1, "1001")
        await box.save_message_ref("discord", "g1", 2, "1002")
        await box.save_message_ref("discord", "g3", 1, "3001")
        await box.save_message_ref("slack", "g2", 1, "C1/2.000100")  # same group key on another channel
        common = {"route": "default", "status": "firing", "body": b"{}", "dedupe_window": 0.0, "max_queue": 100}
        for group in ("g1", "g2", "g3"):
            await box.enqueue(group_key=group, dedupe_key=group, channels=["discord"], **common)
        claimed = await box.claim_due(["discord"], time.time() + 1, 10)
        assert [(d.group_key, d.refs) for d in claimed] == [
            ("g1", {1: "1001", 2: "1002"}),
            ("g2", {}),
            ("g3", {1: "3001"}),
        ]
    finally:
        await box.close()
