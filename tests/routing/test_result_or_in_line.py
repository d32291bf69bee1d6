"""routing.voice.result_or_in_line: work started ahead is taken when it has
run; a task that has not started yet is cancelled before it runs and the work
is done in line instead (no event-loop pass spent waiting for it)."""

from __future__ import annotations

import asyncio

from routing.voice import result_or_in_line


async def test_a_task_that_has_not_run_is_cancelled_and_the_work_done_in_line() -> None:
    ran: list[str] = []

    async def work(who: str) -> str:
        ran.append(who)
        return who

    ahead = asyncio.ensure_future(work("ahead"))
    assert await result_or_in_line(ahead, lambda: work("in line")) == "in line"
    assert ran == ["in line"]  # in the same pass: the task never ran
    await asyncio.sleep(0)
    assert ahead.cancelled() and ran == ["in line"]


async def test_a_task_that_has_started_or_finished_gives_its_own_result() -> None:
    gate = asyncio.Event()
    calls: list[str] = []

    async def slow() -> str:
        calls.append("slow")
        await gate.wait()
        return "ahead"

    async def again() -> str:
        calls.append("again")
        return "in line"

    started = asyncio.ensure_future(slow())
    await asyncio.sleep(0)  # it runs up to its wait
    waiting = asyncio.ensure_future(result_or_in_line(started, again))
    await asyncio.sleep(0)
    gate.set()
    assert await waiting == "ahead"

    done = asyncio.ensure_future(again())
    await done
    assert await result_or_in_line(done, again) == "in line"
    assert calls == ["slow", "again"]  # the finished one's result, not a second run


async def test_a_plain_future_is_awaited() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, 7)

    async def never() -> int:
        raise AssertionError("not a task: awaited as it is")

    assert await result_or_in_line(future, never) == 7
