"""turngym.credit on bad input (a ValueError naming the trajectory and the fix), and devices."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from test_credit import grpo_batch, igpo_batch, traj
from test_credit_properties import all_methods, random_trajectories

from turngym import Trajectory, Turn
from turngym.credit import TurnBatch, gae, gated, gigpo, grpo, igpo, reinforce, returns, rloo, salt


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("method", [grpo, rloo, gigpo, salt])
def test_group_of_one_is_an_error(method) -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj([("s", "a", 0)], group="a"),
            traj([("s", "a", 0)], group="a"),
            traj([("s", "a", 0)], group="b", traj_id="lonely"),
        ]
    )
    with pytest.raises(ValueError, match=r"trajs\[2\].*lonely.*group_size >= 2"):
        method(batch)


def test_igpo_group_of_one_and_missing_probs() -> None:
    with pytest.raises(ValueError, match=r"trajs\[0\].*only trajectory"):
        igpo(TurnBatch.from_trajectories([traj([("s", "a", 0)])]), gold_probs=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="gold_answer_probabilities"):
        igpo(igpo_batch())


def test_bad_trajectory_input() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        TurnBatch.from_trajectories([])
    with pytest.raises(ValueError, match=r"trajs\[1\].*no turns"):
        TurnBatch.from_trajectories([traj([("s", "a", 0)]), Trajectory(turns=[])])
    with pytest.raises(ValueError, match=r"trajs\[1\].*turn 1 reward is nan"):
        TurnBatch.from_trajectories(
            [traj([("s", "a", 0)]), traj([("s", "a", 0), ("s", "a", float("nan"))])]
        )
    with pytest.raises(ValueError, match=r"trajs\[0\].*outcome is inf"):
        TurnBatch.from_trajectories([traj([("s", "a", 0)], outcome=float("inf"))])
    bad_component = Trajectory(turns=[Turn(reward_components={"progress": float("nan")})])
    with pytest.raises(ValueError, match=r"trajs\[0\].*turn 0 component 'progress' is nan"):
        TurnBatch.from_trajectories([bad_component])
    with pytest.raises(ValueError, match="not a number"):
        TurnBatch.from_trajectories([Trajectory(turns=[Turn(reward="high")])])
    with pytest.raises(ValueError, match="not a turngym.Trajectory"):
        TurnBatch.from_trajectories([{"turns": []}])


def test_mismatched_shapes_and_nan_tensors() -> None:
    batch = igpo_batch()  # [2, 3]
    with pytest.raises(ValueError, match=r"rewards has shape \(2, 2\).*\(2, 3\)"):
        grpo(batch, rewards=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"values has shape"):
        gae(batch, values=torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"gold_probs has shape \(2, 3\).*max_turns \+ 1"):
        igpo(batch, gold_probs=torch.zeros(2, 3))
    nan_rewards = torch.zeros(2, 3)
    nan_rewards[1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"rewards is not finite at trajs\[1\].*turn 1"):
        returns(batch, rewards=nan_rewards)
    # NaN on padding is ignored (row 1 has 2 turns; column 2 is padding)
    padded_nan = torch.zeros(2, 3)
    padded_nan[1, 2] = float("nan")
    assert torch.isfinite(returns(batch, rewards=padded_nan)).all()
    with pytest.raises(ValueError, match="values is not finite"):
        gae(batch, values=nan_rewards)


def test_bad_hyperparameters() -> None:
    batch = grpo_batch()
    with pytest.raises(ValueError, match="score='best'.*'outcome' or 'return'"):
        grpo(batch, score="best")
    with pytest.raises(ValueError, match="merge='tree'.*edge.*prefix"):
        salt(batch, merge="tree")
    with pytest.raises(ValueError, match="baseline='mean'"):
        reinforce(batch, baseline="mean")
    with pytest.raises(ValueError, match=r"gamma=1.5 must be in \[0, 1\]"):
        gigpo(batch, gamma=1.5)
    with pytest.raises(ValueError, match="chain must name"):
        gated(batch, chain=[])


# ---------------------------------------------------------------------------- devices, imports
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, CUDA])])
def test_device_matches_cpu(device: str) -> None:
    # The "cpu" case checks the comparison itself (and .to()) on machines without a GPU.
    batch = TurnBatch.from_trajectories(
        random_trajectories(seed=7, groups=40, group_size=6, turns=12)
    )
    for name, method in all_methods(batch).items():
        cpu = method(batch)
        moved = method(batch.to(device))
        assert moved.device.type == device, name
        torch.testing.assert_close(moved.cpu(), cpu, atol=1e-5, rtol=1e-5, msg=name)


def test_import_turngym_does_not_import_torch() -> None:
    code = "import sys, turngym; assert 'torch' not in sys.modules, 'turngym imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)
