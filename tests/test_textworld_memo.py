"""textworld interns every Proposition it ever builds in one process-wide dict; both textworld
families bound it (envs/textworld/memo.py). Clearing it must change no output, and must bound it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("textworld", reason="the [textworld] extra is not installed")

import turngym  # noqa: E402
from turngym.envs.textworld import memo  # noqa: E402

CASES = {
    "alfworld": ("turngym/ALFWorld-v1", {"num_tasks": (2, 1), "max_turns": 8}),
    "textworld": ("turngym/TextWorld-Easy-v1", {"max_turns": 8}),
}


def _play(env_id: str, kwargs: dict, episodes: int = 12) -> tuple[list, list[int]]:
    """Trajectories of a seeded random policy in this process, and the memo size at each reset."""
    env = turngym.make(env_id, **kwargs)
    rng, sizes, played = np.random.default_rng(0), [], []
    try:
        for seed in range(episodes):
            observation, info = env.reset(seed=seed)
            sizes.append(memo.memo_size())
            steps = [(observation, info.get("state_key"), info.get("admissible_commands"))]
            done = False
            while not done:
                commands = info.get("admissible_commands") or ["look"]
                action = str(commands[rng.integers(len(commands))])
                observation, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                steps.append(
                    (action, observation, reward, info.get("state_key"), info.get("progress"))
                )
            played.append(steps)
    finally:
        env.close()
    return played, sizes


@pytest.mark.parametrize("family", sorted(CASES))
def test_clearing_the_memo_before_every_reset_changes_no_output(family, monkeypatch) -> None:
    env_id, kwargs = CASES[family]
    monkeypatch.setattr(memo, "MEMO_LIMIT", 10**9)
    kept, kept_sizes = _play(env_id, kwargs)
    monkeypatch.setattr(memo, "MEMO_LIMIT", 0)
    cleared, cleared_sizes = _play(env_id, kwargs)
    assert len(kept) == 12 and all(len(steps) > 1 for steps in kept)
    assert cleared == kept
    assert max(cleared_sizes) < kept_sizes[-1]  # it was cleared: each reset starts afresh


def test_the_memo_stays_bounded_across_many_tasks(monkeypatch) -> None:
    env_id, kwargs = CASES["alfworld"]
    memo.bound_textworld_memo(limit=-1)  # start empty: tasks played earlier add nothing new
    monkeypatch.setattr(memo, "MEMO_LIMIT", 10**9)
    _, unbounded = _play(env_id, kwargs)
    memo.bound_textworld_memo(limit=-1)
    monkeypatch.setattr(memo, "MEMO_LIMIT", 1_000)
    _, bounded = _play(env_id, kwargs)
    assert unbounded[-1] - unbounded[0] > 3_000, unbounded  # new tasks keep adding entries
    assert max(bounded) < 1_000 + 2_500, bounded  # the limit plus at most one episode's worth
