"""The asynchronous schedule of :func:`turngym.rollout` (``mode="async"``), on one asyncio loop.

Each env slot runs its episodes as a chain of tasks: reset -> (wait for an action) -> step -> ...
An episode whose env step returned joins ``ready``. The dispatcher sends ``ready`` to the policy when
it holds ``batch_size`` conversations, when ``batch_wait`` seconds passed since the dispatcher
first saw it non-empty, or at once when no env command is in flight (nothing more can arrive);
at most ``concurrency`` policy calls run at a time. Env commands are the pool's futures
(``asyncio.wrap_future``), so workers step in parallel while the loop waits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from turngym.policy import call_policy_async, is_async_policy
from turngym.pool import WorkerDied
from turngym.rollout_run import AbandonableExecutor, Episode, RolloutRun

__all__ = ["run_async"]


async def run_async(run: RolloutRun, batch_size: int, batch_wait: float, concurrency: int) -> None:
    """Plays every queued episode of ``run`` to its end with per-episode scheduling."""
    loop = asyncio.get_running_loop()
    # Sync policies run in daemon threads (at most ``concurrency`` at once, by ``slots``): a call
    # abandoned by policy_timeout never holds interpreter exit, unlike a ThreadPoolExecutor's.
    executor = None if is_async_policy(run.policy) else AbandonableExecutor()
    ready: list[Episode] = []
    wake = asyncio.Event()
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task] = set()
    failures: list[BaseException] = []
    in_flight = 0  # env commands (reset or step) not yet answered

    def spawn(coroutine: Any) -> None:
        task = loop.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(settled)

    def settled(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())
        wake.set()

    async def command(slot: int, method: str, argument: Any) -> Any:
        nonlocal in_flight
        in_flight += 1
        try:
            return await asyncio.wrap_future(run.pool.submit(slot, method, argument))
        finally:
            in_flight -= 1

    async def start(slot: int) -> None:
        while run.queue:
            index = run.queue.popleft()
            try:
                result = await command(slot, "reset", run.reset_argument(index))
            except WorkerDied as error:
                run.worker_died(index, error)
                continue
            ready.append(run.begin(slot, index, result))
            return

    async def step(episode: Episode, action: Any) -> None:
        try:
            result = await command(episode.slot, "step", action.text)
        except WorkerDied as error:
            run.worker_died(episode.index, error, episode)
            await start(episode.slot)
            return
        if run.record(episode, action, result):
            await start(episode.slot)
        else:
            ready.append(episode)

    async def act(batch: list[Episode]) -> None:
        try:
            call = call_policy_async(
                run.policy, [episode.conversation for episode in batch], executor=executor
            )
            try:
                actions = await asyncio.wait_for(call, run.policy_timeout)
            except Exception as error:  # noqa: BLE001 - every policy failure becomes a PolicyError
                raise run.policy_error(error, batch) from error
        finally:
            slots.release()
        for episode, action in zip(batch, actions, strict=True):
            spawn(step(episode, action))

    try:
        for slot in range(run.num_envs):
            spawn(start(slot))
        while True:
            if failures:
                raise failures[0]
            if run.complete:
                break
            if not ready:
                wake.clear()
                await wake.wait()
                continue
            deadline = loop.time() + batch_wait
            while len(ready) < batch_size and in_flight and not failures:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            await slots.acquire()
            if failures:
                slots.release()
                continue
            batch = ready[:batch_size]
            del ready[:batch_size]
            spawn(act(batch))
    finally:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
