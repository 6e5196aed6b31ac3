"""``turngym.rollout``: run a policy over many episodes on a kept or temporary :class:`EnvPool`.

Two schedules, the same trajectories for a policy whose answer depends only on the conversation:

- ``mode="lockstep"`` (default): each turn, the observations of all live episodes go to the policy
  in ONE call (so an LLM generates for the whole batch), then every env steps in parallel and the
  runner waits for all of them.
- ``mode="async"``: every episode advances on its own. An observation joins the pending set as soon
  as its env step returns; the pending set goes to the policy when it holds ``batch_size``
  conversations, or ``batch_wait`` seconds after the first one arrived, or at once when no env step
  is in flight (so nothing more can arrive). Up to ``policy_concurrency`` policy calls run at once
  (``async def act``/``act_async`` policies are awaited; a sync ``act`` runs in a thread), and a slow
  env or a slow request stalls nobody else. See :mod:`turngym.rollout_async`.

Envs live in an :class:`~turngym.pool.EnvPool`: pass ``pool=`` to reuse one across calls (a
training loop should), else the call builds one for ``num_envs`` envs over ``workers`` processes
and closes it on return. ``num_envs`` (episodes live at once, the policy's batch) is independent of
``workers``: ``workers=0`` keeps every env in this process, ``workers=2, num_envs=16`` hosts 8 envs
per process. Gymnasium's ``AsyncVectorEnv`` is not used: its auto-reset steps every env in
lock-step and cannot give each episode its own task and seed.

Episodes ``i = 0 .. num_episodes-1`` form groups of ``group_size`` consecutive episodes. Every
episode of group ``g`` resets with seed ``seed + g`` (same task, same env randomness), so group
members differ only by the policy's choices, as GRPO/GiGPO/SALT require.

**A dead worker** (killed, crashed, or over ``step_timeout``): the episodes it held are reported on
stderr with the env id, task and worker, and *retried once* from reset (same index, seed and task)
on the replacement worker; a second death records the episode as failed: ``success=False``,
``outcome=0.0``, ``metadata["failed"]`` = the reason, and the turns it played. A retried episode
carries ``metadata["retried"]``. The run goes on and every finished trajectory is returned.

**Policy failures** (an exception, the wrong number of actions, no answer within
``policy_timeout`` s) raise :class:`~turngym.error.PolicyError` naming the episodes of the batch;
an env raising raises :class:`~turngym.pool.EnvCommandError`. Either way the trajectories finished
so far are on the exception as ``error.trajectories`` and a kept pool stays usable.

``Turn.info["usage"]`` holds the policy call's token counts (``prompt_tokens``,
``completion_tokens``, ``total_tokens``) when the policy reported them (``GeneratedAction.usage``)
or when they follow from its token ids.
"""

from __future__ import annotations

from typing import Any

from turngym.error import InvalidArgumentError, TurnGymError
from turngym.policy import is_async_policy
from turngym.pool import EnvPool, EnvSource, WorkerDied, rollout_workers
from turngym.rollout_run import RolloutRun, strip_privileged
from turngym.trajectory import Trajectory

__all__ = ["MODES", "check_rollout_counts", "rollout", "strip_privileged"]

#: Scheduling modes of :func:`rollout`.
MODES = ("lockstep", "async")


def check_rollout_counts(num_episodes: int, group_size: int, num_envs: int) -> None:
    """Raises InvalidArgumentError unless all three are positive ints and ``group_size`` divides
    ``num_episodes`` (shared by the single- and multi-agent runners)."""
    for name, value in (
        ("num_episodes", num_episodes),
        ("group_size", group_size),
        ("num_envs", num_envs),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArgumentError(f"{name}={value!r} must be a positive int")
    if num_episodes % group_size:
        raise InvalidArgumentError(
            f"num_episodes={num_episodes} is not a multiple of group_size={group_size}; "
            f"use num_episodes={group_size * max(1, num_episodes // group_size)}."
        )


def _run_lockstep(run: RolloutRun) -> None:
    pool, live = run.pool, {}
    free = list(range(run.num_envs))

    def start_episodes() -> None:
        while free and run.queue:
            starts = []
            while free and run.queue:
                index = run.queue.popleft()
                slot = free.pop(0)
                starts.append((slot, index, pool.submit(slot, "reset", run.reset_argument(index))))
            for slot, index, future in starts:
                try:
                    live[slot] = run.begin(slot, index, future.result())
                except WorkerDied as error:
                    free.append(slot)
                    run.worker_died(index, error)

    start_episodes()
    while live:
        slots = sorted(live)
        batch = [live[slot] for slot in slots]
        actions = run.act(batch)
        futures = [
            pool.submit(slot, "step", action.text)
            for slot, action in zip(slots, actions, strict=True)
        ]
        for slot, action, future in zip(slots, actions, futures, strict=True):
            episode = live[slot]
            try:
                result = future.result()
            except WorkerDied as error:
                del live[slot]
                free.append(slot)
                run.worker_died(episode.index, error, episode)
                continue
            if run.record(episode, action, result):
                del live[slot]
                free.append(slot)
        start_episodes()


def rollout(
    env_id: EnvSource,
    policy: Any,
    *,
    num_episodes: int,
    seed: int = 0,
    group_size: int = 1,
    num_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    mp_context: str | None = None,
    pool: EnvPool | None = None,
    workers: int | None = None,
    mode: str = "lockstep",
    batch_size: int | None = None,
    batch_wait: float = 0.01,
    policy_concurrency: int | None = None,
    policy_timeout: float | None = None,
    step_timeout: float | None = None,
    recorder: Any = None,
) -> list[Trajectory]:
    """Runs ``policy`` for ``num_episodes`` episodes and returns their trajectories in order.

    Args:
        env_id: a registered id, or a picklable env factory (the pool's, when ``pool`` is given).
        policy: an object with ``act(list[Conversation]) -> list[str | GeneratedAction]`` (sync
            or ``async def``; or ``act_async``), or such a callable.
        num_episodes: how many trajectories; a multiple of ``group_size``.
        seed: episode ``i`` resets with seed ``seed + i // group_size``.
        group_size: G, the number of episodes per task group.
        num_envs: episodes live at once, i.e. the lock-step policy batch (default 1, or the
            pool's size; at most the pool's size).
        env_kwargs: keyword arguments for ``turngym.make`` (with ``pool``: None or the pool's).
        progress: show a progress bar (tqdm, on stderr).
        mp_context: start method of a temporary pool's workers (default forkserver on Linux).
        pool: a kept :class:`EnvPool` to run on (left open); None builds a temporary one.
        workers: worker processes of a temporary pool (default ``num_envs`` when > 1, else 0:
            in-process). Ignored with ``pool``.
        mode: ``"lockstep"`` or ``"async"`` (see the module docstring).
        batch_size: async mode: the most conversations per policy call (default ``num_envs``).
        batch_wait: async mode: seconds a pending conversation waits for a fuller batch.
        policy_concurrency: async mode: policy calls in flight at once (default: ``num_envs``
            for async policies, 1 for sync ones, which run in a thread).
        policy_timeout: seconds a policy call may take before :class:`PolicyError` (None: no limit).
        step_timeout: seconds an env command may take before its worker is killed and replaced
            (temporary pools; a kept pool has its own).
        recorder: a :class:`turngym.credit.TrajectoryRecorder`; each finished episode is also
            recorded into its columns (row = episode index), so ``recorder.to_batch()`` gives
            the credit batch without building it from the trajectories afterwards.
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode={mode!r} is not one of {', '.join(MODES)}")
    if pool is not None:
        if pool.closed:
            raise InvalidArgumentError("pool is closed; build a new EnvPool")
        if not pool.matches(env_id, env_kwargs):
            raise InvalidArgumentError(
                f"pool runs {pool.name!r} with env_kwargs={pool.env_kwargs}, but rollout was asked "
                f"for {env_id!r} with env_kwargs={env_kwargs}; pass the pool's id, or env_kwargs=None."
            )
        num_envs = pool.num_envs if num_envs is None else num_envs
        if isinstance(num_envs, int) and num_envs > pool.num_envs:
            raise InvalidArgumentError(
                f"num_envs={num_envs} exceeds the pool's {pool.num_envs} envs; build a larger pool"
            )
    num_envs = 1 if num_envs is None else num_envs
    check_rollout_counts(num_episodes, group_size, num_envs)
    for name, value in (("batch_size", batch_size), ("policy_concurrency", policy_concurrency)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidArgumentError(f"{name}={value!r} must be a positive int or None")
    if batch_wait < 0 or (policy_timeout is not None and not policy_timeout > 0):
        raise InvalidArgumentError("batch_wait must be >= 0 and policy_timeout > 0 or None")
    from turngym.policy import as_policy

    if not hasattr(policy, "act_async"):
        as_policy(policy)  # a clear PolicyError for something that is not a policy, before any work
    live = min(num_envs, num_episodes)
    owned = pool is None
    if owned:
        pool = EnvPool(
            env_id,
            live,
            env_kwargs,
            workers=rollout_workers(live, workers),
            mp_context=mp_context,
            step_timeout=step_timeout,
        )
    run = RolloutRun(pool, policy, num_episodes, seed, group_size, progress, policy_timeout)
    run.recorder = recorder
    run.num_envs = live  # a kept pool may hold more envs than this call keeps live: the first ones
    try:
        if mode == "lockstep":
            _run_lockstep(run)
        else:
            from turngym.policy import _run_to_completion
            from turngym.rollout_async import run_async

            concurrency = policy_concurrency or (live if is_async_policy(policy) else 1)
            _run_to_completion(run_async(run, batch_size or live, batch_wait, concurrency))
    except TurnGymError as error:
        run.attach(error)
        raise
    finally:
        run.close()
        if owned:
            pool.close()
    return run.results()
