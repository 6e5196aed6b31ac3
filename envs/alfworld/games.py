"""ALFWorld game files: generated ones (verified, cached) and the official data set on disk.

A game is a folder in ALFWorld's own layout: ``game.tw-pddl`` (JSON: ``pddl_domain``, ``grammar``
with the task text filled in, ``pddl_problem``, ``solvable``, ``walkthrough``), ``traj_data.json``
(``task_type``, ``pddl_params``, ``scene``, ``turk_annotations``) and ``initial_state.pddl``.

Generated games are proven solvable before they are cached: a walkthrough is built from the
problem's construction (fetch the target, use the appliance, place it / switch the lamp on) and
replayed through the real engine; every command must be admissible when played and the engine's
goal check (``won``) must hold at the end. A problem that fails is re-drawn deterministically.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from turngym.cache import cache_root, cached_dir
from turngym.envs.alfworld.builder import build_in_helper
from turngym.envs.alfworld.engine import AlfredEngine, domain_and_grammar
from turngym.envs.alfworld.problems import TASK_TYPES, Problem, generate_problem, mangle
from turngym.error import InvalidArgumentError

__all__ = [
    "GENERATOR_VERSION",
    "generated_game",
    "build_walkthrough",
    "verify_walkthrough",
    "write_game",
    "find_official_games",
    "OFFICIAL_SPLITS",
    "data_root",
]

GENERATOR_VERSION = "v1"
#: turngym split (and rooms) -> ALFWorld's folder under ``json_2.1.1``.
OFFICIAL_SPLITS = {
    ("train", "seen"): "train",
    ("train", "unseen"): "train",
    ("test", "seen"): "valid_seen",
    ("test", "unseen"): "valid_unseen",
}
_REDRAWS = 8


def write_game(folder: Path, problem: Problem, task_id: str, walkthrough: list[str] | None) -> Path:
    """Writes ``problem`` in ALFWorld's per-trial layout into ``folder``; returns the game file."""
    domain, grammar = domain_and_grammar()
    folder.mkdir(parents=True, exist_ok=True)
    game = {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", problem.description),
        "pddl_problem": problem.pddl_problem,
        "solvable": walkthrough is not None,
        "walkthrough": walkthrough,
    }
    (folder / "initial_state.pddl").write_text(problem.pddl_problem)
    (folder / "traj_data.json").write_text(json.dumps(problem.traj_data(task_id), indent=1))
    path = folder / "game.tw-pddl"
    path.write_text(json.dumps(game))
    return path


def build_walkthrough(problem: Problem, names: dict[str, str]) -> list[str]:
    """The commands that solve ``problem``, from how it was built (``names``: engine id -> name)."""
    name = {
        alfred_id: names[mangle(alfred_id).lower()]
        for alfred_id, *_ in problem.objects + problem.receptacles
    }
    where = {oid: rid for oid, _, rid in problem.objects}
    cls_of = {rid: cls for rid, cls in problem.receptacles}
    import alfworld.gen.constants as constants

    commands: list[str] = []
    at: list[str | None] = [None]
    opened: set[str] = set()

    def go(rid: str) -> None:
        if at[0] != rid:
            commands.append(f"go to {name[rid]}")
            at[0] = rid
        if cls_of[rid] in constants.OPENABLE_CLASS_SET and rid not in opened:
            commands.append(f"open {name[rid]}")
            opened.add(rid)

    def first(cls: str) -> str:
        return min((rid for rid, c in problem.receptacles if c == cls), key=lambda rid: name[rid])

    def fetch(oid: str) -> None:
        go(where[oid])
        commands.append(f"take {name[oid]} from {name[where[oid]]}")

    def place(oid: str) -> None:
        go(first(problem.parent_target))
        commands.append(f"move {name[oid]} to {name[first(problem.parent_target)]}")

    targets = sorted(
        (oid for oid, cls, _ in problem.objects if cls == problem.object_target),
        key=lambda o: name[o],
    )
    task = problem.task_type
    fetch(targets[0])
    if task == "look_at_obj_in_light":
        lamp = next(oid for oid, cls, _ in problem.objects if cls == problem.toggle_target)
        at_lamp = where[lamp]
        if at[0] != at_lamp:
            commands.append(f"go to {name[at_lamp]}")
        commands.append(f"use {name[lamp]}")
        return commands
    for verb, appliance in (("clean", "SinkBasin"), ("heat", "Microwave"), ("cool", "Fridge")):
        if task == f"pick_{verb}_then_place_in_recep":
            device = first(appliance)
            if at[0] != device:
                commands.append(f"go to {name[device]}")
                at[0] = device
            commands.append(f"{verb} {name[targets[0]]} with {name[device]}")
    place(targets[0])
    if task == "pick_two_obj_and_place":
        fetch(targets[1])
        place(targets[1])
    return commands


def verify_walkthrough(engine: AlfredEngine, game_file: Path, walkthrough: list[str]) -> str | None:
    """Replays ``walkthrough`` through the engine; returns None when it wins, else what went wrong."""
    engine.load(game_file)
    engine.reset()
    if engine.won:
        return "the goal already holds at the start"
    for turn, command in enumerate(walkthrough):
        if command not in engine.admissible_commands:
            return f"turn {turn}: {command!r} is not admissible"
        engine.step(command)
        if engine.won and turn < len(walkthrough) - 1:
            return f"won early at turn {turn}"
    return None if engine.won else "the walkthrough ends without winning"


def _build(folder: Path, task_type: str, seed: int, rooms: str, task_id: str) -> None:
    engine = AlfredEngine()
    try:
        errors = []
        for attempt in range(_REDRAWS):
            problem = generate_problem(task_type, seed, rooms, attempt)
            game_file = write_game(folder, problem, task_id, walkthrough=None)
            engine.load(game_file, force=True)  # the same path holds a new problem on a redraw
            engine.reset()
            walkthrough = build_walkthrough(problem, engine.names())
            error = verify_walkthrough(engine, game_file, walkthrough)
            if error is None:
                write_game(folder, problem, task_id, walkthrough)
                return
            errors.append(f"attempt {attempt}: {error}")
        raise RuntimeError(f"could not build a solvable {task_id}: {errors}")
    finally:
        engine.close()


def generated_game(task_type: str, seed: int, rooms: str) -> Path:
    """The verified, cached ``game.tw-pddl`` of a generated task (built on first use)."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; valid: {list(TASK_TYPES)}")
    task_id = f"{task_type}-{rooms}-{seed}"
    key = f"{GENERATOR_VERSION}-{task_id}"
    with _build_lock(key):
        # Built in a helper process: generation keeps memory where it runs (see builder.py).
        folder = cached_dir(
            "alfworld", key, lambda tmp: build_in_helper(tmp, task_type, seed, rooms, task_id)
        )
    return folder / "game.tw-pddl"


@contextlib.contextmanager
def _build_lock(key: str) -> Iterator[None]:
    """Serialises processes that need the same game (parallel rollouts, test workers): a build takes
    seconds, so the second process waits for the first one's result instead of building it again."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: concurrent builds stay correct, only slower
        yield
        return
    folder = cache_root() / "alfworld" / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


#: ``$ALFWORLD_DATA`` as the user set it. Importing ``alfworld.info`` (the engine does) sets the variable
#: to alfworld's default cache folder when it is unset, which would make the choice between official
#: and generated games depend on import order; read the user's value before that can happen.
_USER_ALFWORLD_DATA = os.environ.get("ALFWORLD_DATA")


def data_root(data_dir: str | os.PathLike | None) -> Path | None:
    """The official data folder (holding ``json_2.1.1``) from ``data_dir`` or ``$ALFWORLD_DATA``."""
    from_env = os.environ.get("ALFWORLD_DATA")
    if from_env != _USER_ALFWORLD_DATA and _alfworld_default(from_env):
        from_env = _USER_ALFWORLD_DATA
    candidates = [data_dir] if data_dir is not None else [from_env]
    for candidate in candidates:
        if not candidate:
            continue
        root = Path(candidate).expanduser()
        if (root / "json_2.1.1").is_dir():
            return root
        if root.name == "json_2.1.1" and root.is_dir():
            return root.parent
        if data_dir is None and not _alfworld_default(candidate):
            warnings.warn(
                f"$ALFWORLD_DATA={candidate} holds no json_2.1.1 folder, so generated ALFWorld games "
                "are played; run alfworld-download into it, or unset it to silence this warning.",
                stacklevel=3,
            )
    return None


def _alfworld_default(value: str | None) -> bool:
    return value is not None and Path(value) == Path("~/.cache/alfworld").expanduser()


def find_official_games(root: Path, folder: str, task_types: tuple[str, ...]) -> dict[str, Path]:
    """Solvable games of ``json_2.1.1/<folder>`` with the given task types: task id -> game file.

    Follows ALFWorld's own ``AlfredTWEnv.collect_game_files``: movable-receptacle and sliced tasks
    are skipped, as are games without ``solvable: true``. Task ids are paths relative to
    ``json_2.1.1`` (``valid_seen/pick_and_place_simple-.../trial_...``).
    """
    base = root / "json_2.1.1"
    found = sorted((base / folder).glob("*/*/traj_data.json"))
    if not found:
        present = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        why = "does not exist" if not (base / folder).is_dir() else "holds no */*/traj_data.json"
        raise InvalidArgumentError(
            f"{base / folder} {why}, so this split has no ALFWorld games (split='train' reads "
            "train/, split='test' reads valid_seen/ with rooms='seen' and valid_unseen/ with "
            f"rooms='unseen'; {base} has {present}). Run `alfworld-download` with ALFWORLD_DATA="
            f"{root} to fetch every split, or pick the split/rooms whose folder is there."
        )
    games: dict[str, Path] = {}
    for traj_path in found:
        trial = traj_path.parent
        game_file = trial / "game.tw-pddl"
        relative = trial.relative_to(base).as_posix()
        if "movable" in relative or "Sliced" in relative or not game_file.is_file():
            continue
        traj = _read_json(traj_path)
        if traj.get("task_type") not in task_types:
            continue
        if not _read_json(game_file).get("solvable"):
            continue
        games[relative] = game_file
    return games


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); re-download or fix the ALFWorld data"
        ) from error
