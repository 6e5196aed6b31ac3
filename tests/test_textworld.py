"""TextWorld family: conformance, expert vs random, rewards, state keys, cache, user games, errors.

Games come from the default pools (10 per preset and split), generated on first use and cached in
the test cache (tests/conftest.py), so a cold run generates about 25 games (~0.7 s each).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import turngym
from helpers.episodes import play  # noqa: E402
from turngym.agents import RandomPolicy, expert
from turngym.envs.textworld import games
from turngym.envs.textworld.env import TextWorldEnv, game_pool
from turngym.envs.textworld.games import (
    GAME_FILE,
    INFO_FILE,
    PRESETS,
    TEST_SEED_OFFSET,
    cache_key,
    generate_game,
)
from turngym.error import InvalidArgumentError, UnknownTaskError
from turngym.testing import EnvConformanceMixin, check_env

OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
TEXTWORLD_IDS = [
    "turngym/TextWorld-v0",
    "turngym/TextWorld-Easy-v0",
    "turngym/TextWorld-Medium-v0",
    "turngym/TextWorld-Hard-v0",
]


class TestEasyConformance(EnvConformanceMixin):
    def make_env(self) -> gymnasium.Env:
        return turngym.make("turngym/TextWorld-Easy-v0")


@pytest.mark.parametrize("env_id", TEXTWORLD_IDS[:1] + TEXTWORLD_IDS[2:])
def test_conformance_of_every_textworld_id(env_id: str) -> None:
    env = turngym.make(env_id)
    try:
        check_env(env, skip_gymnasium=True)
    finally:
        env.close()


def test_default_id_is_medium_and_prints_textworld_text() -> None:
    env = turngym.make("turngym/TextWorld-v0")
    observation, info = env.reset(seed=0)
    assert env.unwrapped.params == PRESETS["medium"]
    assert "TextWorld" in info["instructions"] and "-= " in observation  # a room title
    assert observation[0].isalpha() and "$$$$" not in observation  # the ASCII banner is dropped
    assert info["admissible_actions"] and info["privileged"]["walkthrough"]
    env.close()


def test_expert_wins_20_of_20_seeded_games() -> None:
    wins = []
    for difficulty in ("easy", "medium"):
        env = TextWorldEnv(difficulty=difficulty)
        policy = expert(f"turngym/TextWorld-{difficulty.capitalize()}-v0")
        for task in env.task_ids:  # 10 distinct games per preset
            won, infos = play(env, policy, task)
            wins.append(won)
            assert all(i["valid_action"] for i in infos[1:])
            assert infos[-1]["progress"] == 1.0 and infos[-1]["outcome"] == 1.0
        env.close()
    assert len(wins) == 20 and all(wins), f"expert lost {wins.count(False)} of 20 games"


def test_random_wins_visibly_less_than_the_expert() -> None:
    expert_runs = turngym.rollout(
        "turngym/TextWorld-Medium-v0",
        expert("turngym/TextWorld-Medium-v0"),
        num_episodes=20,
        seed=0,
        progress=False,
    )
    random_runs = turngym.rollout(
        "turngym/TextWorld-Medium-v0", RandomPolicy(seed=0), num_episodes=20, seed=0, progress=False
    )
    expert_rate = np.mean([t.success for t in expert_runs])
    random_rate = np.mean([t.success for t in random_runs])
    assert expert_rate == 1.0
    assert random_rate <= expert_rate - 0.4, f"random won {random_rate:.0%} of medium games"
    assert np.mean([len(t.turns) for t in random_runs]) > 2 * np.mean(
        [len(t.turns) for t in expert_runs]
    )


def _detour(env: TextWorldEnv) -> tuple[str, str, str, dict]:
    """A task whose start offers a move off the walkthrough: (task, move, move back, reset info)."""
    for task in env.task_ids:
        _, info = env.reset(options={"task": task})
        for action in info["admissible_actions"]:
            if action.startswith("go ") and action != info["privileged"]["walkthrough"][0]:
                return task, action, "go " + OPPOSITE[action.split()[1]], info
    raise AssertionError("no game of the pool offers a detour; change the pool")


def test_expert_replans_after_the_episode_left_the_walkthrough() -> None:
    env = TextWorldEnv(difficulty="medium")
    task, detour, back, _ = _detour(env)
    won, infos = play(env, expert("turngym/TextWorld-v0"), task, prefix=(detour, "take nothing"))
    assert won and infos[2]["privileged"]["policy_commands"][0] == back
    assert infos[3]["valid_action"] and len(infos) - 1 == 2 + 1 + len(
        infos[0]["privileged"]["walkthrough"]
    )
    env.close()


def test_dense_rewards_are_normalised_and_sparse_pays_only_the_outcome() -> None:
    policy = expert("turngym/TextWorld-v0")
    for mode in ("dense", "sparse"):
        env = TextWorldEnv(difficulty="medium", reward_mode=mode)
        _, infos = play(env, policy, "1")
        totals: dict[str, float] = {}
        for info in infos[1:]:
            for name, value in info["reward_components"].items():
                totals[name] = totals.get(name, 0.0) + value
        if mode == "dense":
            assert totals == pytest.approx(
                {"format": 0.0, "score": 1.0, "progress": 1.0, "outcome": 1.0}
            )
            assert [i["progress"] for i in infos] == pytest.approx([0, 1 / 3, 2 / 3, 1])
        else:
            assert totals == {"outcome": 1.0}
        env.close()


def test_invalid_commands_never_reach_the_engine_and_keep_the_state() -> None:
    env = TextWorldEnv(difficulty="easy")
    _, info = env.reset(options={"task": "3"})
    sent: list[str] = []
    engine_step = env._engine.step
    env._engine.step = lambda command: (sent.append(command), engine_step(command))[1]
    first = info["admissible_actions"][0]
    for garbage in ("xyzzy", "take the moon", f"please {first}", ""):
        observation, reward, terminated, _, step_info = env.step(garbage)
        assert not step_info["valid_action"] and not terminated
        assert reward == pytest.approx(-0.1) and "not an available command" in observation
        assert step_info["state_key"] == info["state_key"]
    _, _, _, _, step_info = env.step(f"  {first.upper()}  ")  # normalised, then valid
    assert step_info["valid_action"] and sent == [first]
    env.close()


def test_state_key_comes_from_game_facts_not_text() -> None:
    env = TextWorldEnv(difficulty="medium")
    _, go, back, start = _detour(env)
    _, _, _, _, looked = env.step("look")
    assert looked["state_key"] == start["state_key"]
    _, _, _, _, away = env.step(go)
    _, _, _, _, returned = env.step(back)
    assert away["state_key"] != start["state_key"] and returned["state_key"] == start["state_key"]
    env.close()


def test_splits_are_disjoint_and_num_games_sizes_the_pool() -> None:
    train = TextWorldEnv(difficulty="easy", num_games=3)
    test = TextWorldEnv(difficulty="easy", num_games=3, split="test")
    assert train.task_ids == ["0", "1", "2"]
    assert test.task_ids == [str(TEST_SEED_OFFSET + i) for i in range(3)]
    assert TextWorldEnv(game_seeds=[5, 7]).task_ids == ["5", "7"]


def test_reset_generates_only_the_game_it_needs_and_a_corrupt_game_is_rebuilt(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    env = TextWorldEnv(difficulty="easy", num_games=5)
    env.reset(options={"task": "2"})
    env.close()
    folders = list((tmp_path / "textworld").iterdir())
    assert [f.name for f in folders if not f.name.startswith(".")] == [
        cache_key(PRESETS["easy"], 2)
    ]
    path = generate_game(PRESETS["easy"], 2)
    sidecar = path.with_suffix(".json").read_text()
    path.write_bytes(path.read_bytes()[:1000])  # a truncated game file
    with pytest.warns(UserWarning, match="corrupt"):
        rebuilt = generate_game(PRESETS["easy"], 2)
    assert rebuilt == path and path.stat().st_size > 100_000
    assert path.with_suffix(".json").read_text() == sidecar  # generation is deterministic
    won, _ = play(
        TextWorldEnv(difficulty="easy", num_games=5), expert("turngym/TextWorld-Easy-v0"), "2"
    )
    assert won


def test_a_game_whose_walkthrough_fails_is_replaced_by_the_next_seed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    verdicts = iter([False, True])  # as if the parser refused the first game's walkthrough
    monkeypatch.setattr(games, "_walkthrough_wins", lambda path, walkthrough: next(verdicts))
    path = generate_game(PRESETS["easy"], 4)
    record = json.loads((path.parent / INFO_FILE).read_text())
    assert record["seed"] == 4 and record["generator_seed"] == 4 + games.RETRY_SEED_STRIDE


def test_user_supplied_games_load_from_their_paths(tmp_path) -> None:
    source = game_pool("easy", "train", num_games=1)[0]
    mine = tmp_path / "my_quest.z8"
    shutil.copy(source, mine)
    shutil.copy(source.with_suffix(".json"), mine.with_suffix(".json"))
    for given in (mine, mine.with_suffix(".json")):
        env = turngym.make("turngym/TextWorld-v0", games=[str(given)])
        assert env.unwrapped.task_ids == ["my_quest"]
        won, _ = play(env, expert("turngym/TextWorld-v0"), "my_quest")
        assert won
        env.close()
    lonely = tmp_path / "lonely.z8"
    shutil.copy(source, lonely)
    with pytest.raises(InvalidArgumentError, match="sidecar"):
        TextWorldEnv(games=[lonely])
    (tmp_path / "old.ulx").write_bytes(b"Glul")
    with pytest.raises(InvalidArgumentError, match="Glulx"):
        TextWorldEnv(games=[tmp_path / "old.ulx"])
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        TextWorldEnv(games=[tmp_path / "missing.z8"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": "extreme"}, "easy.*medium.*hard"),
        ({"num_games": 0}, "num_games"),
        ({"quest_length": 0}, "quest_length"),
        ({"difficulty": "easy", "rooms": 3}, "world_size"),
        ({"games": [Path(GAME_FILE)], "game_seeds": [1]}, "not both|does not exist"),
        ({"split": "valid"}, "train"),
    ],
)
def test_bad_kwargs_say_what_is_valid(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        turngym.make("turngym/TextWorld-v0", **kwargs)


def test_unknown_task_lists_the_valid_ones() -> None:
    env = TextWorldEnv(difficulty="easy", num_games=2)
    with pytest.raises(UnknownTaskError, match=r"\['0', '1'\]"):
        env.reset(options={"task": "12345"})
