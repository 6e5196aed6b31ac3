"""The verl-reproducing keywords of turngym.credit against verl's own ``core_algos`` functions.

One token per turn, so verl's token axis is turngym's turn axis. verl 0.9.1 needs its own venv
(``.venv-verl``, built by ``tests/run.sh``; ``TURNGYM_VERL_PYTHON`` overrides the path): in the
main env ``test_in_the_verl_venv`` runs this file there.
"""

from __future__ import annotations

import types

import pytest
import torch

from helpers.verl_venv import HAS_VERL, needs_verl, run_in_verl_venv
from turngym import Trajectory, Turn
from turngym.credit import TurnBatch, gae, grpo, reinforce, rloo


@pytest.mark.skipif(HAS_VERL, reason="verl is installed here: the tests below run directly")
def test_in_the_verl_venv() -> None:
    result = run_in_verl_venv(__file__, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout.strip().splitlines()[-1], result.stdout[-2000:]


def random_batch(seed: int) -> TurnBatch:
    """Groups of 4 with ragged lengths, random rewards and outcomes (all groups >= 2)."""
    generator = torch.Generator().manual_seed(seed)
    trajectories = []
    for i in range(16):
        length = int(torch.randint(1, 7, (1,), generator=generator))
        turns = [Turn(reward=float(torch.rand(1, generator=generator))) for _ in range(length)]
        outcome = float(torch.randint(0, 3, (1,), generator=generator)) / 2  # ties are common
        trajectories.append(Trajectory(turns=turns, group_id=f"g{i // 4}", outcome=outcome))
    return TurnBatch.from_trajectories(trajectories)


def outcome_rewards(batch: TurnBatch) -> torch.Tensor:
    """verl's token_level_rewards for an outcome-only score: the outcome on the last token."""
    rewards = torch.zeros_like(batch.rewards)
    rewards[torch.arange(batch.num_trajectories), batch.lengths - 1] = batch.outcome
    return rewards


@needs_verl
@pytest.mark.parametrize("seed", range(3))
def test_gae_whiten_is_verl_gae(seed: int) -> None:
    from verl.trainer.ppo import core_algos

    batch = random_batch(seed)
    mask = batch.mask.float()
    values = torch.rand(batch.mask.shape, generator=torch.Generator().manual_seed(seed)) * mask
    expected, _ = core_algos.compute_gae_advantage_return(batch.rewards, values, mask, 0.9, 0.8)
    actual = gae(batch, values=values, gamma=0.9, lam=0.8, whiten=True)
    torch.testing.assert_close(actual, expected * mask, atol=1e-5, rtol=0)


@needs_verl
def test_reinforce_whiten_is_verl_reinforce_plus_plus_and_group_baselines_match() -> None:
    import numpy as np
    from verl.trainer.ppo import core_algos

    batch = random_batch(7)
    mask = batch.mask.float()
    config = types.SimpleNamespace(gamma=0.9)
    expected, _ = core_algos.compute_reinforce_plus_plus_outcome_advantage(
        batch.rewards, mask, config=config
    )
    actual = reinforce(batch, gamma=0.9, baseline="none", whiten=True)
    torch.testing.assert_close(actual, expected * mask, atol=1e-5, rtol=0)
    # GRPO and RLOO need no keyword on groups of >= 2 whose scores differ; an all-equal group is
    # exactly 0 here and rounding noise (<= 1e-6 relative, / (std + eps)) in verl, hence atol.
    index = np.array([f"g{i // 4}" for i in range(batch.num_trajectories)], dtype=object)
    scores = outcome_rewards(batch)
    expected_grpo, _ = core_algos.compute_grpo_outcome_advantage(scores, mask, index)
    torch.testing.assert_close(grpo(batch), expected_grpo * mask, atol=1e-4, rtol=0)
    expected_rloo, _ = core_algos.compute_rloo_outcome_advantage(scores, mask, index)
    torch.testing.assert_close(rloo(batch), expected_rloo * mask, atol=1e-5, rtol=0)
