"""store.group_commit.GroupCommit with ``write_now`` (a store that can write
on the caller's thread): the first items of an event-loop pass are each
written inside ``submit``, the ones after them in the same pass are grouped;
when the store cannot write now, the usual way."""

from __future__ import annotations

import asyncio

import pytest

from store.group_commit import GroupCommit


class Store:
    def __init__(self, *, now: bool = True, fail: str | None = None) -> None:
        self.now = now
        self.fail = fail
        self.batches: list[tuple[str, list[str]]] = []

    def write_now(self, items: list[str]) -> bool:
        if not self.now:
            return False
        if self.fail in items:
            raise RuntimeError(f"refused {self.fail}")
        self.batches.append(("now", list(items)))
        return True

    async def write(self, items: list[str]) -> None:
        await asyncio.sleep(0)
        if self.fail in items:
            raise RuntimeError(f"refused {self.fail}")
        self.batches.append(("later", list(items)))


async def test_a_lone_item_is_written_in_submit_and_its_future_is_already_done() -> None:
    store = Store()
    group = GroupCommit(store.write, max_batch=10, name="t", write_now=store.write_now)

    done = group.submit("a")

    assert done.done() and done.result() is None
    assert store.batches == [("now", ["a"])]
    await asyncio.sleep(0)  # the next pass: the next lone item goes at once too
    assert group.submit("b").done()
    assert store.batches == [("now", ["a"]), ("now", ["b"])]
    assert group.transactions == 2


async def test_a_burst_in_one_pass_is_a_few_at_once_then_one_batch() -> None:
    store = Store()
    group = GroupCommit(
        store.write, max_batch=10, name="t", write_now=store.write_now, now_per_pass=2
    )

    futures = [group.submit(x) for x in "abcde"]
    await asyncio.gather(*futures)

    assert store.batches == [("now", ["a"]), ("now", ["b"]), ("later", ["c", "d", "e"])]
    assert group.transactions == 3
    await asyncio.sleep(0)  # a new pass: at once again
    assert group.submit("f").done()


async def test_a_store_that_cannot_write_now_gets_the_usual_group_commit() -> None:
    store = Store(now=False)
    group = GroupCommit(store.write, max_batch=10, name="t", write_now=store.write_now)

    futures = [group.submit(x) for x in "abc"]
    assert not any(f.done() for f in futures)
    await asyncio.gather(*futures)

    assert store.batches == [("later", ["a", "b", "c"])]


async def test_a_write_in_submit_that_fails_fails_only_its_item() -> None:
    store = Store(fail="a")
    group = GroupCommit(
        store.write, max_batch=10, name="t", write_now=store.write_now, now_per_pass=1
    )

    failed = group.submit("a")
    later = group.submit("b")

    with pytest.raises(RuntimeError, match="refused a"):
        await failed
    await later
    assert store.batches == [("later", ["b"])]
    assert (group.transactions, group.failures) == (2, 1)
