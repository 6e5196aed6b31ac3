"""ALFWorld family: expert vs random, official-data loader, rewards, state keys, bad input, splits.

The conformance check runs on every ALFWorld id in tests/test_conformance.py; here it runs on the
official-data layout. The 60 seeded tasks of the expert test are generated once per cache (in
parallel, ~5 s each cold; the test cache of tests/conftest.py keeps them), everything else reuses
them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import turngym

pytest.importorskip("alfworld")
pytest.importorskip("fast_downward")

from helpers.episodes import play  # noqa: E402
from turngym.agents import RandomPolicy, expert  # noqa: E402
from turngym.envs.alfworld import games, problems  # noqa: E402
from turngym.envs.alfworld.engine import domain_and_grammar  # noqa: E402
from turngym.envs.alfworld.env import INVALID_FEEDBACK, TEST_SEED_OFFSET, ALFWorldEnv  # noqa: E402
from turngym.envs.alfworld.goals import GoalSpec, goal_progress  # noqa: E402
from turngym.envs.alfworld.problems import TASK_TYPES, generate_problem  # noqa: E402
from turngym.envs.alfworld.scenes import floor_plans  # noqa: E402
from turngym.error import InvalidArgumentError, UnknownTaskError  # noqa: E402
from turngym.testing import check_env  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "alfworld"
SEEDS = range(10)
#: The official trials of the fixture and their walkthroughs as ALFWorld ships them (the first one
#: with a detour, like the data set's perturbed expert runs; None: solved by the planner expert).
OFFICIAL_WALKTHROUGHS = {
    "valid_seen/pick_and_place_simple-SoapBar-None-Toilet-424/trial_T20190908_102411_372915": [
        "go to countertop 1",
        "examine countertop 1",
        "take soapbar 1 from countertop 1",
        "go to toilet 1",
        "move soapbar 1 to toilet 1",
    ],
    "valid_unseen/pick_clean_then_place_in_recep-Cloth-None-Cabinet-424/trial_T20190909_044715_250790": None,
    "train/pick_heat_then_place_in_recep-Egg-None-CounterTop-7/trial_T20190907_151802_277016": [
        "go to fridge 1",
        "open fridge 1",
        "take egg 2 from fridge 1",
        "go to microwave 1",
        "heat egg 2 with microwave 1",
        "go to countertop 1",
        "move egg 2 to countertop 1",
    ],
}


@pytest.fixture(scope="session")
def seeded_tasks() -> list[str]:
    """The 60 seeded train tasks (10 per type), generated and verified in parallel on first use."""
    tasks = [(task_type, seed, "seen") for task_type in TASK_TYPES for seed in SEEDS]
    workers = max(1, min(2, os.cpu_count() or 1))
    # pytest-xdist workers each run this fixture: they walk the tasks from opposite ends and the
    # generator's per-game lock makes each game built once.
    order = tasks[::-1] if os.environ.get("PYTEST_XDIST_WORKER", "gw0")[-1] in "13579" else tasks
    with ProcessPoolExecutor(workers) as pool:  # a package function: importable by any start method
        list(pool.map(games.generated_game, *zip(*order, strict=True)))
    return [f"{task_type}-{rooms}-{seed}" for task_type, seed, rooms in tasks]


def _write_official_games(root: Path) -> Path:
    """Copies the fixture's ``json_2.1.1`` and writes each trial's ``game.tw-pddl`` as ALFWorld does.

    ``alfworld-generate`` writes ``{pddl_domain, grammar, pddl_problem, solvable, walkthrough}`` with
    the grammar's ``UNKNOWN GOAL`` replaced by the templated task; the trials that ALFWorld skips
    (movable receptacles, sliced objects, unsolvable games) are added next to the playable ones.
    """
    shutil.copytree(FIXTURES / "json_2.1.1", root / "json_2.1.1")
    domain, grammar = domain_and_grammar()
    base = root / "json_2.1.1"

    def write(trial: Path, solvable: bool, walkthrough: list[str] | None) -> None:
        traj = json.loads((trial / "traj_data.json").read_text())
        params = traj["pddl_params"]
        task = problems.task_description(
            traj["task_type"],
            params["object_target"],
            params["parent_target"],
            params["toggle_target"],
            0,
        )
        game = {
            "pddl_domain": domain,
            "grammar": grammar.replace("UNKNOWN GOAL", task),
            "pddl_problem": (trial / "initial_state.pddl").read_text(),
            "solvable": solvable,
            "walkthrough": walkthrough,
        }
        (trial / "game.tw-pddl").write_text(json.dumps(game))

    for trial_id, walkthrough in OFFICIAL_WALKTHROUGHS.items():
        write(base / trial_id, True, walkthrough)
    source = (
        base
        / "train/pick_heat_then_place_in_recep-Egg-None-CounterTop-7/trial_T20190907_151802_277016"
    )
    for skipped, solvable in (
        (
            "train/pick_and_place_with_movable_recep-Egg-Mug-CounterTop-7/trial_T20190907_000001_000001",
            True,
        ),
        (
            "train/pick_heat_then_place_in_recep-EggSliced-None-CounterTop-7/trial_T20190907_000002_000002",
            True,
        ),
        (
            "train/pick_heat_then_place_in_recep-Egg-None-CounterTop-7/trial_T20190907_000003_000003",
            False,
        ),
    ):
        shutil.copytree(source, base / skipped)
        write(base / skipped, solvable, None)
    return root


@pytest.fixture(scope="session")
def official_root(tmp_path_factory) -> Path:
    return _write_official_games(tmp_path_factory.mktemp("alfworld_data"))


# ---------------------------------------------------------------- expert, random, rewards
def test_expert_wins_60_of_60_seeded_tasks_10_per_type(seeded_tasks) -> None:
    env = ALFWorldEnv()
    policy = expert("turngym/ALFWorld-v0")
    wins: dict[str, list[bool]] = {task_type: [] for task_type in TASK_TYPES}
    for task in seeded_tasks:
        won, infos = play(env, policy, task)
        wins[infos[0]["task_type"]].append(won)
        assert all(i["valid_action"] for i in infos[1:]), task
        assert infos[-1]["progress"] == 1.0 and infos[-1]["outcome"] == 1.0, task
        # Progress reaches 1 exactly when the engine's own goal check does.
        assert all(i["progress"] < 1.0 for i in infos[:-1]), task
    env.close()
    assert {t: len(w) for t, w in wins.items()} == {t: 10 for t in TASK_TYPES}
    assert all(all(w) for w in wins.values()), (
        f"expert lost: { {t: w.count(False) for t, w in wins.items()} }"
    )


def test_random_agent_wins_less_than_the_expert(seeded_tasks) -> None:
    env = ALFWorldEnv(max_turns=30)
    policy = RandomPolicy(seed=0)
    tasks = [t for t in seeded_tasks if t.startswith(("pick_and_place_simple", "pick_heat"))]
    outcomes = [play(env, policy, task)[0] for task in tasks]
    env.close()
    assert np.mean(outcomes) <= 0.5, f"random won {np.mean(outcomes):.0%} of 20 tasks"


def test_dense_progress_is_read_from_the_pddl_state_and_sums_to_one(seeded_tasks) -> None:
    task = "pick_heat_then_place_in_recep-seen-0"
    for mode in ("dense", "sparse"):
        env = ALFWorldEnv(reward_mode=mode)
        _, infos = play(env, expert("turngym/ALFWorld-v0"), task)
        totals: dict[str, float] = {}
        for info in infos[1:]:
            for name, value in info["reward_components"].items():
                totals[name] = totals.get(name, 0.0) + value
        if mode == "dense":
            assert totals == pytest.approx({"format": 0.0, "progress": 1.0, "outcome": 1.0})
            # has the object -> it is hot -> hot and in the target receptacle
            assert sorted(set(i["progress"] for i in infos)) == pytest.approx([0, 1 / 3, 2 / 3, 1])
            assert np.all(np.diff([i["progress"] for i in infos]) >= 0)
        else:
            assert totals == {"outcome": 1.0}
        env.close()


def test_progress_goes_back_down_when_the_object_is_put_back(seeded_tasks) -> None:
    env = ALFWorldEnv()
    _, info = env.reset(options={"task": "pick_and_place_simple-seen-0"})
    walkthrough = info["privileged"]["walkthrough"]
    take = next(i for i, c in enumerate(walkthrough) if c.startswith("take "))
    for command in walkthrough[: take + 1]:
        *_, info = env.step(command)
    assert info["progress"] == 0.5 and info["reward_components"]["progress"] == pytest.approx(0.5)
    obj, source = walkthrough[take][len("take ") :].split(" from ")
    *_, info = env.step(f"move {obj} to {source}")
    assert info["valid_action"] and info["progress"] == 0.0
    assert info["reward_components"]["progress"] == pytest.approx(-0.5)
    env.close()


def test_goal_progress_counts_the_dynamic_goal_conditions() -> None:
    facts = [
        ("objecttype", "apple1", "appletype"),
        ("objecttype", "apple2", "appletype"),
        ("receptacletype", "fridge1", "fridgetype"),
        ("receptacletype", "table1", "diningtabletype"),
    ]
    cool = GoalSpec("pick_cool_then_place_in_recep", "Apple", "DiningTable")
    assert goal_progress(cool, facts) == 0.0
    assert goal_progress(cool, facts + [("holds", "agent1", "apple1")]) == pytest.approx(1 / 3)
    assert goal_progress(
        cool, facts + [("holds", "agent1", "apple1"), ("iscool", "apple1")]
    ) == pytest.approx(2 / 3)
    # a cool apple put down elsewhere and a warm apple on the table: each counts 1/3 alone, the best
    # single object counts (the goal needs one apple with both)
    assert goal_progress(
        cool, facts + [("iscool", "apple1"), ("inreceptacle", "apple2", "table1")]
    ) == pytest.approx(1 / 3)
    assert (
        goal_progress(cool, facts + [("iscool", "apple2"), ("inreceptacle", "apple2", "table1")])
        == 1.0
    )
    two = GoalSpec("pick_two_obj_and_place", "Apple", "DiningTable")
    assert goal_progress(two, facts + [("inreceptacle", "apple1", "table1")]) == 0.5
    assert (
        goal_progress(
            two, facts + [("inreceptacle", "apple1", "table1"), ("holds", "agent1", "apple2")]
        )
        == 0.75
    )


# ---------------------------------------------------------------- bad input and state keys
def test_bad_input_gets_nothing_happens_and_the_episode_goes_on(seeded_tasks) -> None:
    env = ALFWorldEnv()
    _, info = env.reset(options={"task": "pick_clean_then_place_in_recep-seen-0"})
    sent: list[str] = []
    engine_step = env._engine.step
    env._engine.step = lambda command: (sent.append(command), engine_step(command))[1]
    bad = [
        "xyzzy",
        "dance with the fridge",
        "take unicorn 7 from countertop 1",
        "go to spaceship 1",
        "heat apple 99 with microwave 1",
        "take " + "x" * 100_000,
        "go to " + "countertop 1 " * 9_000,
        "",
    ]
    for action in bad:
        observation, reward, terminated, truncated, step_info = env.step(action)
        assert observation == INVALID_FEEDBACK and not step_info["valid_action"]
        assert not (terminated or truncated) and reward == pytest.approx(-0.1)
        assert step_info["reward_components"] == {"format": -0.1, "progress": 0.0}
        assert step_info["state_key"] == info["state_key"]
        assert step_info["admissible_actions"] == info["admissible_actions"]
    first = info["privileged"]["walkthrough"][0]
    _, _, _, _, step_info = env.step(f"  {first.upper()}  ")  # normalised, then valid
    assert step_info["valid_action"] and sent == [first] and step_info["turn"] == len(bad) + 1
    env.close()


def test_state_key_comes_from_the_pddl_state_not_the_text(seeded_tasks) -> None:
    env, twin = ALFWorldEnv(), ALFWorldEnv()
    task = "pick_and_place_simple-seen-1"
    _, start = env.reset(options={"task": task})
    targets = [c for c in start["admissible_actions"] if c.startswith("go to ")][:2]
    _, _, _, _, looked = env.step("look")
    assert looked["state_key"] == start["state_key"]  # look only sets bookkeeping facts
    *_, first = env.step(targets[0])
    *_, detour = env.step(targets[1])
    # Another instance reaches the same PDDL state by the direct route: same key, other text.
    twin.reset(options={"task": task})
    direct_observation, *_, direct = twin.step(targets[1])
    assert first["state_key"] != start["state_key"] and detour["state_key"] == direct["state_key"]
    _, other = env.reset(options={"task": "pick_and_place_simple-seen-2"})
    assert other["state_key"] != start["state_key"]
    env.close()
    twin.close()


# ---------------------------------------------------------------- tasks, splits and generation
def test_splits_ids_and_unseen_rooms() -> None:
    train = ALFWorldEnv(num_tasks=(3, 2))
    test = ALFWorldEnv(num_tasks=(3, 2), split="test")
    unseen = turngym.make("turngym/ALFWorld-Unseen-v0").unwrapped
    assert len(train.task_ids) == 18 and len(test.task_ids) == 12
    assert not set(train.task_ids) & set(test.task_ids)
    assert {int(t.rsplit("-", 1)[1]) for t in test.task_ids} == {
        TEST_SEED_OFFSET,
        TEST_SEED_OFFSET + 1,
    }
    assert unseen.split == "test" and all("-unseen-" in t for t in unseen.task_ids)
    assert not set(floor_plans("seen")) & set(floor_plans("unseen"))
    assert len(floor_plans("seen")) > 80 and len(floor_plans("unseen")) >= 10
    for task_type in TASK_TYPES:
        problem = generate_problem(task_type, TEST_SEED_OFFSET, "unseen")
        assert problem.scene.number in floor_plans("unseen")
        assert (
            generate_problem(task_type, 3, "seen").pddl_problem
            == generate_problem(task_type, 3, "seen").pddl_problem
        )


@pytest.mark.parametrize(
    ("name", "task_type"),
    [("PickAndPlace", "pick_and_place_simple"), ("PickTwo", "pick_two_obj_and_place")],
)
def test_per_type_ids_draw_only_their_type(name: str, task_type: str) -> None:
    env = turngym.make(f"turngym/ALFWorld-{name}-v0")
    assert {t.rsplit("-", 2)[0] for t in env.unwrapped.task_ids} == {task_type}
    env.close()


def test_generated_games_use_alfworlds_layout_domain_and_goal_templates(seeded_tasks) -> None:
    env = ALFWorldEnv()
    domain, grammar = domain_and_grammar()
    for task_type in TASK_TYPES:
        path = env.game_path(f"{task_type}-seen-0")
        game = json.loads(path.read_text())
        traj = json.loads((path.parent / "traj_data.json").read_text())
        assert game["pddl_domain"] == domain and game["solvable"] is True and game["walkthrough"]
        assert (path.parent / "initial_state.pddl").read_text() == game["pddl_problem"]
        assert traj["task_type"] == task_type and traj["scene"]["scene_num"] in floor_plans("seen")
        task = traj["turk_annotations"]["anns"][0]["task_desc"]
        assert game["grammar"] == grammar.replace("UNKNOWN GOAL", task)
        observation, info = env.reset(options={"task": f"{task_type}-seen-0"})
        assert observation.startswith(
            "You are in the middle of a room. Looking quickly around you, you see"
        )
        assert f"Your task is to: {task}." in info["instructions"]  # stated once, there (v1)
        assert "Your task is to:" not in observation and "Welcome to TextWorld" not in observation
    env.close()


def test_a_problem_that_fails_verification_is_redrawn(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    verdicts = iter(["turn 2: 'take x' is not admissible", None])
    monkeypatch.setattr(
        games, "verify_walkthrough", lambda engine, path, walkthrough: next(verdicts)
    )
    monkeypatch.setattr(games, "build_in_helper", games._build)  # the patch lives in this process
    path = games.generated_game("pick_and_place_simple", 5, "seen")
    assert (
        json.loads(path.read_text())["pddl_problem"]
        == generate_problem("pick_and_place_simple", 5, "seen", attempt=1).pddl_problem
    )


def test_games_are_generated_in_a_helper_process(tmp_path, monkeypatch) -> None:
    from turngym.envs.alfworld import builder

    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    before = builder._HELPER.builds
    path = games.generated_game("pick_and_place_simple", 7, "seen")
    assert json.loads(path.read_text())["walkthrough"]
    assert builder._HELPER.builds == before + 1 and builder._HELPER.process.pid != os.getpid()
    assert games.generated_game("pick_and_place_simple", 7, "seen") == path  # cached: no build
    assert builder._HELPER.builds == before + 1
    with pytest.raises(RuntimeError, match="unknown task type|KeyError|ValueError"):
        builder.build_in_helper(tmp_path / "x", "no_such_type", 0, "seen", "bad")


def test_bad_arguments_say_what_is_valid(tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="pick_and_place_simple"):
        ALFWorldEnv(task_types=["pick_banana"])
    with pytest.raises(InvalidArgumentError, match="seen"):
        ALFWorldEnv(rooms="kitchen")
    with pytest.raises(InvalidArgumentError, match="num_tasks"):
        ALFWorldEnv(num_tasks=0)
    with pytest.raises(InvalidArgumentError, match="json_2.1.1"):
        ALFWorldEnv(data_dir=tmp_path)
    with pytest.raises(UnknownTaskError, match="pick_and_place_simple-seen-0"):
        ALFWorldEnv(num_tasks=1).reset(options={"task": "pick_and_place_simple-seen-7"})


# ---------------------------------------------------------------- official data layout
def test_official_data_loader_follows_alfworlds_splits_and_filters(
    official_root, monkeypatch
) -> None:
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    train = ALFWorldEnv(data_dir=official_root)
    seen = ALFWorldEnv(data_dir=official_root / "json_2.1.1", split="test")
    unseen = ALFWorldEnv(data_dir=official_root, split="test", rooms="unseen")
    assert train.task_ids == [t for t in OFFICIAL_WALKTHROUGHS if t.startswith("train/")]  # skips 3
    assert seen.task_ids == [t for t in OFFICIAL_WALKTHROUGHS if t.startswith("valid_seen/")]
    assert unseen.task_ids == [t for t in OFFICIAL_WALKTHROUGHS if t.startswith("valid_unseen/")]
    assert ALFWorldEnv(data_dir=official_root, task_types=["pick_and_place_simple"]).task_ids == []
    monkeypatch.setenv("ALFWORLD_DATA", str(official_root))
    assert turngym.make("turngym/ALFWorld-v0").unwrapped.task_ids == train.task_ids
    monkeypatch.setenv("ALFWORLD_DATA", str(official_root / "train"))  # not the data folder
    with pytest.warns(UserWarning, match="alfworld-download"):
        generated = ALFWorldEnv()
    assert generated.data_root is None and generated.task_ids[0] == "pick_and_place_simple-seen-0"


def test_official_games_play_with_their_walkthrough_or_the_planner(official_root) -> None:
    policy = expert("turngym/ALFWorld-v0")
    for trial_id, walkthrough in OFFICIAL_WALKTHROUGHS.items():
        split = "train" if trial_id.startswith("train/") else "test"
        rooms = "unseen" if "valid_unseen" in trial_id else "seen"
        env = ALFWorldEnv(data_dir=official_root, split=split, rooms=rooms)
        observation, info = env.reset(options={"task": trial_id})
        assert (
            "You are in the middle of a room" in observation
            and "Your task is to: " in info["instructions"]
        )
        if walkthrough is not None:
            assert info["privileged"]["walkthrough"] == walkthrough
        else:  # planner expert: a plan from ALFWorld's own Fast Downward replan
            assert info["privileged"]["walkthrough"][-1] == "move cloth 1 to cabinet 1"
        won, infos = play(env, policy, trial_id)
        assert won and infos[-1]["progress"] == 1.0 and all(i["valid_action"] for i in infos[1:])
        if "Toilet" in trial_id:
            assert [i["progress"] for i in infos] == [0.0, 0.0, 0.0, 0.5, 0.5, 1.0]
        env.close()


def test_official_layout_passes_the_conformance_check(official_root) -> None:
    check_env(lambda: ALFWorldEnv(data_dir=official_root), skip_gymnasium=True)


# ---------------------------------------------------------------- the engine speedups
_REPLAY = """
import json, sys
import numpy as np
from turngym.envs.alfworld.engine import AlfredEngine
engine, rng, out = AlfredEngine(speedups=sys.argv[1] == "1"), np.random.default_rng(0), []
for path in sys.argv[2:]:
    engine.load(path)
    state = engine.reset()
    for _ in range(25):
        out.append([state.feedback, engine.admissible_commands, sorted(map(str, engine.facts())), engine.won])
        state = engine.step(str(rng.choice(engine.admissible_commands)))
print(json.dumps(out))
"""


def test_engine_speedups_change_no_output(seeded_tasks) -> None:
    paths = [
        str(ALFWorldEnv().game_path(f"{t}-seen-1"))
        for t in ("pick_heat_then_place_in_recep", "look_at_obj_in_light")
    ]
    runs = [
        subprocess.run(
            [sys.executable, "-c", _REPLAY, flag, *paths],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TURNGYM_CACHE": os.environ["TURNGYM_CACHE"]},
        ).stdout
        for flag in ("0", "1")
    ]
    assert json.loads(runs[0]) == json.loads(runs[1]) and len(json.loads(runs[0])) == 50
