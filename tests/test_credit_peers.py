"""Each "reproduce the peer" keyword of turngym.credit against numbers derived by hand from the
peer's published code (the derivations are in the comments; the peers are named in each credit
module's "Compared with" section), and the pre-action grouping of issue 15.

Conventions: std "sample" is Bessel-corrected; R2 = 1/sqrt(2) = 0.70711.
"""

from __future__ import annotations

import pytest
import torch

from turngym import Trajectory, Turn, load_trajectories, save_trajectories
from turngym.credit import TurnBatch, gae, gigpo, grpo, igpo, reinforce, salt, spa, spa_rewards

R2 = 2**-0.5


def close(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(
        actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-4, rtol=0
    )


def traj(steps, group="g", outcome=None, **kwargs) -> Trajectory:
    """``steps``: (state_key, action, reward) triples, the pre-action key on each turn."""
    turns = [Turn(action=a, reward=r, state_key=s) for s, a, r in steps]
    return Trajectory(turns=turns, group_id=group, outcome=outcome, **kwargs)


# ---------------------------------------------------------------------------- pre-action keys
def info_only(reset: str | None) -> list[Trajectory]:
    """Both first actions are taken in s0; the turns carry only the *resulting* state in info."""
    return [
        Trajectory(
            turns=[
                Turn(action="a", reward=0.0, info={"state_key": "s1"}),
                Turn(action="b", reward=1.0, info={"state_key": "s2"}),
            ],
            group_id="g",
            outcome=1.0,
            traj_id="win",
            reset_state_key=reset,
        ),
        Trajectory(
            turns=[Turn(action="c", reward=0.0, info={"state_key": "s3"})],
            group_id="g",
            outcome=0.0,
            traj_id="lose",
            reset_state_key=reset,
        ),
    ]


def test_gigpo_groups_on_the_state_the_action_was_taken_in(tmp_path) -> None:
    # episode: +-0.7071. gamma 0.95 step returns: win [0 + 0.95 * 1, 1] = [0.95, 1], lose [0].
    # Anchor s0 = {0.95 (win turn 0), 0 (lose turn 0)} -> +-0.7071; win turn 1 (in s1) alone -> 0.
    # (Grouping on the resulting states s1, s3 would give [[0.707, 0.707], [-0.707, 0]].)
    expected = [[2 * R2, R2], [-2 * R2, 0.0]]
    explicit = TurnBatch.from_trajectories(
        [
            traj([("s0", "a", 0.0), ("s1", "b", 1.0)], outcome=1.0),
            traj([("s0", "c", 0.0)], outcome=0.0),
        ]
    )
    close(gigpo(explicit, eps=0.0), expected)
    derived = TurnBatch.from_trajectories(info_only(reset="s0"))
    close(gigpo(derived, eps=0.0), expected)
    assert derived.state_ids.tolist() == [[0, 1], [0, -1]]
    # a file written by turngym carries the derived pre-action keys, and reads back the same
    loaded = load_trajectories(save_trajectories(tmp_path / "t.jsonl", info_only(reset="s0")))
    assert [turn.state_key for t in loaded for turn in t.turns] == ["s0", "s1", "s0"]
    close(gigpo(TurnBatch.from_trajectories(loaded), eps=0.0), expected)


def test_underivable_pre_action_key_is_a_clear_error_for_state_grouping_only() -> None:
    batch = TurnBatch.from_trajectories(info_only(reset=None))
    for method in (gigpo, salt):
        with pytest.raises(ValueError, match=r"trajs\[0\].*win.*turn 0.*reset_state_key"):
            method(batch)
    close(grpo(batch, eps=0.0)[:, 0], [R2, -R2])  # grpo never looks at states
    with pytest.raises(ValueError, match="turn 0 has no pre-action state key"):
        info_only(reset=None)[0].state_keys()
    # a trajectory that records no key at all is fine: every turn is a state of its own
    plain = TurnBatch.from_trajectories(
        [Trajectory(turns=[Turn(action="a")], group_id="g", outcome=o) for o in (1.0, 0.0)]
    )
    assert plain.unknown_states is None
    close(gigpo(plain, eps=0.0), [[R2], [-R2]])


# ---------------------------------------------------------------------------- verl GAE
def test_gae_whiten_reproduces_verl() -> None:
    batch = TurnBatch.from_trajectories(
        [traj([("s", "a", 0.0), ("s", "a", 0.0), ("s", "a", 1.0)]), traj([("s", "a", 1.0)])]
    )
    values = torch.tensor([[0.2, 0.4, 0.6], [0.5, 9.0, 9.0]])
    # unwhitened (tests/test_credit.py::test_gae): [[0.46816, 0.428, 0.4], [0.5]].
    # verl's masked_whiten over the 4 real entries: mean = 1.79616 / 4 = 0.44904;
    # unbiased var = (0.01912^2 + 0.02104^2 + 0.04904^2 + 0.05096^2) / 3 = 0.0019367;
    # (A - mean) * rsqrt(var + 1e-8) = [0.43447, -0.47809, -1.11434 | 1.15797]; padding 0
    close(
        gae(batch, values=values, gamma=0.9, lam=0.8, whiten=True),
        [[0.43447, -0.47809, -1.11434], [1.15797, 0.0, 0.0]],
    )


def test_reinforce_whiten_reproduces_verl_reinforce_plus_plus() -> None:
    batch = TurnBatch.from_trajectories(
        [traj([("s", "a", 1.0), ("s", "a", 0.0), ("s", "a", 2.0)]), traj([("s", "a", 0.5)])]
    )
    # verl: returns with gamma 0.9 = [[2.62, 1.8, 2.0], [0.5]], then masked_whiten:
    # mean 6.92 / 4 = 1.73; unbiased var = (0.89^2 + 0.07^2 + 0.27^2 + 1.23^2) / 3 = 0.794267
    # -> (x - 1.73) / 0.891217 = [0.99864, 0.07854, 0.30296 | -1.38014]
    close(
        reinforce(batch, gamma=0.9, baseline="none", whiten=True),
        [[0.99864, 0.07854, 0.30296], [-1.38014, 0.0, 0.0]],
    )


# ---------------------------------------------------------------------------- verl-agent GiGPO
def gigpo_batch() -> TurnBatch:
    # win: 2 turns (s0, s1), rewards [0, 1], outcome 1; lose: 1 turn (s0), reward 0, outcome 0
    return TurnBatch.from_trajectories(
        [
            traj([("s0", "a", 0.0), ("s1", "b", 1.0)], outcome=1.0),
            traj([("s0", "c", 0.0)], outcome=0.0),
        ]
    )


def test_gigpo_verl_agent_defaults() -> None:
    # verl-agent episode_norm_reward (cross-step pool): one score per STEP row -> {1, 1, 0},
    # mean 2/3; mode mean_norm (no std): win 1 - 2/3 = 1/3, lose 0 - 2/3 = -2/3.
    # step_norm_reward over anchor s0 = {0.95, 0}: mean 0.475 -> +-0.475; s1 singleton -> 0.
    # A = episode + 1.0 * step: win [1/3 + 0.475, 1/3], lose [-2/3 - 0.475]
    close(
        gigpo(gigpo_batch(), episode_pool="step", normalize_std=False),
        [[0.808333, 1 / 3], [-1.141667, 0.0]],
    )
    # the paper's pool (one score per trajectory, {1, 0}, mean 0.5) differs: +-0.5
    close(gigpo(gigpo_batch(), normalize_std=False), [[0.975, 0.5], [-0.975, 0.0]])
    # mode mean_std_norm with the step pool: std{1, 1, 0} = sqrt(1/3) = 0.57735
    # -> win (1/3) / 0.57735 = 0.57735, lose -(2/3) / 0.57735 = -1.1547; s0: std{0.95, 0}
    # = 0.67175 -> +-0.7071
    close(
        gigpo(gigpo_batch(), episode_pool="step", eps=0.0),
        [[0.57735 + R2, 0.57735], [-1.1547 - R2, 0.0]],
    )
    with pytest.raises(ValueError, match="episode_pool"):
        gigpo(gigpo_batch(), episode_pool="token")


# ---------------------------------------------------------------------------- IGPO code
def test_igpo_code_conventions() -> None:
    batch = TurnBatch.from_trajectories(
        [traj([("s", "a", 0)] * 3, outcome=1.0), traj([("s", "a", 0)] * 2, outcome=0.0)]
    )
    probs = torch.tensor([[0.1, 0.3, 0.3, 0.5], [0.1, 0.2, 0.7, 0.0]])
    # IG (non-final turns): row 0 [0.2, 0.0], row 1 [0.1]; F1 (final turns): 1.0, 0.0.
    # IGPO's code: ig_mask drops the zero gain; joint pool {0.2, 0.1, 1.0, 0.0}: mean 0.325,
    # population var = (0.125^2 + 0.225^2 + 0.675^2 + 0.325^2) / 4 = 0.156875,
    # std = sqrt(0.156875 + 1e-8) = 0.396075 (+ epsilon 1e-6)
    # -> 0.2: -0.31560, 0.1: -0.56807, 1.0: 1.70422, 0.0: -0.82055; the dropped turn: 0.
    # gamma 1: row 0 = [-0.31560 + 0 + 1.70422, 0 + 1.70422, 1.70422]; row 1 = [-0.56807 - 0.82055, -0.82055]
    close(
        igpo(batch, gold_probs=probs, pool="joint", std="population", drop_zero_gain=True),
        [[1.38862, 1.70422, 1.70422], [-1.38862, -0.82055, 0.0]],
    )
    # the paper's defaults differ: separate pools, sample std, the zero gain kept:
    # IG pool {0.2, 0, 0.1} -> [1, -1, 0]; F1 pool {1, 0} -> +-0.7071
    close(
        igpo(batch, gold_probs=probs, eps=0.0),
        [[1 - 1 + R2, -1 + R2, R2], [0 - R2, -R2, 0.0]],
    )
    for bad in ({"pool": "mixed"}, {"std": "robust"}):
        with pytest.raises(ValueError, match="is not valid"):
            igpo(batch, gold_probs=probs, **bad)


# ---------------------------------------------------------------------------- SPA-RL script
def test_spa_rewards_reproduce_spa_rl_released_script() -> None:
    def episode(valid, group, outcome):
        return Trajectory(
            turns=[Turn(info={"valid_action": v}) for v in valid], group_id=group, outcome=outcome
        )

    batch = TurnBatch.from_trajectories(
        [
            episode([True, False], "g", 1.0),
            episode([False, False], "g", 0.0),
            episode([False], "g", 0.5),
            episode([False], "h", 0.3),  # alone in its task
        ]
    )
    # prm/rl_data_org.py: every turn's value = outcome - mean(outcomes of the OTHER episodes of
    # the task): 1 - 0.25 = 0.75, 0 - 0.75 = -0.75, 0.5 - 0.5 = 0; alone: its outcome, 0.3.
    # Grounding 0.5 on every grounded turn, and always on the last turn:
    # [0.75 + 0.5, 0.75 + 0.5], [-0.75 + 0, -0.75 + 0.5], [0 + 0.5], [0.3 + 0.5]
    rewards = spa_rewards(
        batch,
        contributions="leave_one_out",
        grounding="bonus",
        grounding_bonus=0.5,
        last_turn_grounded=True,
    )
    close(rewards, [[1.25, 1.25], [-0.75, -0.25], [0.5, 0.0], [0.8, 0.0]])
    # spa feeds exactly these rewards to its base estimator
    close(
        spa(
            batch,
            contributions="leave_one_out",
            grounding="bonus",
            grounding_bonus=0.5,
            last_turn_grounded=True,
            base="returns",
        ),
        [[2.5, 1.25], [-1.0, -0.25], [0.5, 0.0], [0.8, 0.0]],
    )
    # turngym's defaults: no progress reported, so c = the outcome on the last turn; a 0.1
    # penalty on every invalid turn (never a bonus for a valid one)
    close(spa_rewards(batch), [[0.0, 0.9], [-0.1, -0.1], [0.4, 0.0], [0.2, 0.0]])
    with pytest.raises(ValueError, match="leave_one_out"):
        spa_rewards(batch, contributions="loo")
