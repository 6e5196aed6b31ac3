"""What an LLM reads: TextWorld and ALFWorld observations hold the game's text and none of the
interpreter's chrome; the objective is stated once, in the instructions; -v0 stays loadable."""

from __future__ import annotations

import re
import warnings

import gymnasium
import pytest

import turngym

pytest.importorskip("textworld", reason="needs pip install 'turngym[textworld]'")

STATUS_LINE = re.compile(r"-=[^\n]*=-\s*-?\d+/-?\d+")
CHROME = ("RESTART", "RESTORE a saved game", "$$$$")


def _episode(env_id: str, seed: int) -> tuple[dict, list[str]]:
    """Instructions info and every observation of one episode: invalid, look, then the walkthrough."""
    env = turngym.make(env_id)
    try:
        observation, info = env.reset(seed=seed)
        observations = [observation]
        walkthrough = info["privileged"]["walkthrough"]
        for action in ["dance wildly", "look", "inventory", *walkthrough]:
            observation, _, terminated, truncated, step_info = env.step(action)
            observations.append(observation)
            if terminated or truncated:
                break
        assert step_info["success"], f"{env_id}: the walkthrough should win"
        return info, observations
    finally:
        env.close()


def _assert_clean(observations: list[str]) -> None:
    for text in observations:
        assert not STATUS_LINE.search(text), f"status line in {text!r}"
        assert not any(mark in text for mark in CHROME), f"interpreter chrome in {text!r}"
        assert "\n\n\n" not in text and text == text.strip(), f"padding in {text!r}"
        lines = text.split("\n")
        assert all(line == line.strip() for line in lines), f"indented line in {text!r}"
        assert not any(line.startswith(">") for line in lines), f"prompt in {text!r}"


@pytest.mark.parametrize("level", ["Easy", "Medium", "Hard"])
def test_textworld_observations_are_the_games_text_only(level: str) -> None:
    info, observations = _episode(f"turngym/TextWorld-{level}-v1", seed=0)
    _assert_clean(observations)
    assert observations[0].startswith("-= ")  # the first room's title, then its description
    assert "*** The End ***" in observations[-1]  # what the game says at the end stays
    objective = info["instructions"].split("Your task: ", 1)[1].split("\n", 1)[0]
    assert len(objective) > 20 and objective not in observations[0]
    assert sum(objective in text for text in [info["instructions"], *observations]) == 1


def test_the_default_textworld_id_is_clean_too() -> None:
    _, observations = _episode("turngym/TextWorld-v1", seed=1)
    _assert_clean(observations)


def test_alfworld_states_the_task_once_in_the_instructions() -> None:
    pytest.importorskip("alfworld", reason="needs pip install 'turngym[alfworld]'")
    info, observations = _episode("turngym/ALFWorld-v1", seed=0)
    _assert_clean(observations)
    assert "Your task is to:" in info["instructions"]
    assert not any("Your task is to:" in text for text in observations)
    assert observations[0].startswith("You are in the middle of a room")


@pytest.mark.parametrize("env_id", ["turngym/TextWorld-Easy-v0", "turngym/ALFWorld-v0"])
def test_v0_ids_stay_loadable_with_their_old_observations(env_id: str) -> None:
    if "ALFWorld" in env_id:
        pytest.importorskip("alfworld", reason="needs pip install 'turngym[alfworld]'")
    assert env_id not in turngym.list_envs()  # only current versions are listed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = turngym.make(env_id)
    assert any(
        issubclass(w.category, DeprecationWarning)
        and env_id.replace("-v0", "-v1") in str(w.message)
        for w in caught
    )  # says which id new work should use
    assert env_id not in gymnasium.pprint_registry(
        disable_print=True
    )  # gymnasium lists what we list
    with pytest.raises(gymnasium.error.DeprecatedEnv, match=env_id.replace("-v0", "-v1")):
        gymnasium.make(env_id)  # gymnasium's own answer for a version it no longer lists
    observation, info = env.reset(seed=0)
    env.close()
    if "TextWorld" in env_id:
        assert observation.startswith("Your objective is")
        assert STATUS_LINE.search(observation)  # the raw text, as turngym 0.1 showed it
    else:
        assert "Your task is to:" in observation


def test_gymnasiums_registry_lists_exactly_the_current_ids() -> None:
    """``gymnasium.pprint_registry()`` listed 12 -v0 ids ``turngym list`` hides; now both agree."""
    in_gymnasium = {i for i in gymnasium.registry if i.startswith("turngym/")}
    assert in_gymnasium == set(turngym.list_envs())
    printed = gymnasium.pprint_registry(disable_print=True)
    assert set(re.findall(r"turngym/\S+", printed)) == set(turngym.list_envs())
