"""TextWorld game generation and pools: presets, seeds per split, an on-disk verified cache.

A game is fully determined by its :class:`GameParams` (rooms, objects, quest length) and its seed.
Games are generated in-process with ``textworld.generator.make_game`` + ``compile_game`` (the
Python equivalent of ``tw-make custom``; about 0.7 s a game here, Inform 7 compiler included) and
stored with :func:`turngym.cache.cached_dir` under ``textworld/<params>-s<seed>-tw<version>``, so
a corrupt or truncated game file is detected by its checksum and regenerated.

The train and test splits draw from disjoint seed ranges: train seeds are ``0..num_games-1``,
test seeds ``TEST_SEED_OFFSET + 0..num_games-1``. Every game is checked at generation: its
walkthrough must win in the compiled game (see ``_build`` for the rare game that fails, which is
replaced by the game of the next generator seed).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from turngym.cache import cached_dir
from turngym.error import InvalidArgumentError, missing_dependency

__all__ = [
    "GameParams",
    "PRESETS",
    "DEFAULT_NUM_GAMES",
    "TEST_SEED_OFFSET",
    "INFO_FILE",
    "GAME_FILE",
    "split_seeds",
    "resolve_params",
    "cache_key",
    "generate_game",
    "game_pool",
]

#: Seeds of the test split start here (train seeds start at 0), so the splits never share a game.
TEST_SEED_OFFSET = 1_000_000
#: Games per split by default: small, so a cold cache costs seconds (each game is generated the
#: first time a reset needs it).
DEFAULT_NUM_GAMES = 10
#: Name of the compiled game inside its cache folder (its ``.json`` sidecar sits next to it).
GAME_FILE = "game.z8"
#: What turngym records about a generated game (task seed, generator seed, knobs).
INFO_FILE = "turngym.json"
#: A game whose walkthrough the parser refuses is regenerated with seed + k * stride.
RETRY_SEED_STRIDE = 10_000_019
MAX_GENERATION_ATTEMPTS = 10
#: Bumped when generation changes, so caches of older generators are not reused.
GENERATION_REVISION = 1


@dataclass(frozen=True)
class GameParams:
    """The knobs of ``tw-make custom``."""

    world_size: int  # number of rooms
    nb_objects: int  # objects in the world, quest objects included
    quest_length: int  # actions in the quest's walkthrough

    def validate(self) -> GameParams:
        for name in ("world_size", "nb_objects", "quest_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"{name}={value!r} must be a positive int.")
        return self

    @property
    def key(self) -> str:
        return f"r{self.world_size}-o{self.nb_objects}-q{self.quest_length}"


PRESETS: dict[str, GameParams] = {
    "easy": GameParams(world_size=1, nb_objects=4, quest_length=1),
    "medium": GameParams(world_size=4, nb_objects=8, quest_length=3),
    "hard": GameParams(world_size=8, nb_objects=16, quest_length=6),
}


def resolve_params(
    difficulty: str,
    world_size: int | None = None,
    nb_objects: int | None = None,
    quest_length: int | None = None,
) -> GameParams:
    """The preset ``difficulty`` with any of its knobs overridden."""
    if difficulty not in PRESETS:
        raise InvalidArgumentError(
            f"difficulty={difficulty!r} is not valid; use one of {list(PRESETS)} "
            "(and world_size/nb_objects/quest_length to override its knobs)."
        )
    preset = PRESETS[difficulty]
    return GameParams(
        world_size=preset.world_size if world_size is None else world_size,
        nb_objects=preset.nb_objects if nb_objects is None else nb_objects,
        quest_length=preset.quest_length if quest_length is None else quest_length,
    ).validate()


def split_seeds(split: str, num_games: int) -> list[int]:
    """The game seeds of ``split`` (train and test ranges are disjoint)."""
    if (
        not isinstance(num_games, int)
        or isinstance(num_games, bool)
        or not 1 <= num_games <= TEST_SEED_OFFSET
    ):
        raise InvalidArgumentError(
            f"num_games={num_games!r} must be an int in [1, {TEST_SEED_OFFSET}]."
        )
    if split == "train":
        return list(range(num_games))
    if split == "test":
        return list(range(TEST_SEED_OFFSET, TEST_SEED_OFFSET + num_games))
    raise InvalidArgumentError(f"split={split!r} is not valid; use 'train' or 'test'.")


def _textworld_version() -> str:
    try:
        import textworld
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("textworld", "textworld") from error
    return textworld.__version__


def _compile(params: GameParams, generator_seed: int, folder: Path) -> list[str]:
    """Generates and compiles one game into ``folder``; returns its walkthrough."""
    import textworld
    from textworld.generator import compile_game, make_game

    options = textworld.GameOptions()
    options.nb_rooms = params.world_size
    options.nb_objects = params.nb_objects
    options.quest_length = params.quest_length
    options.seeds = generator_seed
    options.path = str(folder / GAME_FILE)
    options.force_recompile = True
    # textworld prints progress and warnings of its own; a reset should not.
    with contextlib.redirect_stdout(io.StringIO()):
        game = make_game(options)
        compile_game(game, options)
    return list(game.metadata.get("walkthrough") or [])


def _walkthrough_wins(path: Path, walkthrough: list[str]) -> bool:
    """Plays the walkthrough in the compiled game: does the Inform 7 parser accept it?"""
    import textworld

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not fully supported.*")  # see env.py
        engine = textworld.start(str(path), request_infos=textworld.EnvInfos(won=True))
    try:
        state = engine.reset()
        for command in walkthrough:
            state, _, _ = engine.step(command)
        return bool(state.get("won"))
    finally:
        engine.close()


def _build(params: GameParams, seed: int, folder: Path) -> None:
    # TextWorld's generator sometimes names two objects so that the parser cannot tell them
    # apart ("box" and "type Q box"): the walkthrough then stalls on "Which do you mean ...?".
    # Such a game is unwinnable by admissible commands, so it is replaced, deterministically,
    # by the game of the next generator seed.
    for attempt in range(MAX_GENERATION_ATTEMPTS):
        generator_seed = seed + attempt * RETRY_SEED_STRIDE
        walkthrough = _compile(params, generator_seed, folder)
        if walkthrough and _walkthrough_wins(folder / GAME_FILE, walkthrough):
            break
    else:
        raise RuntimeError(
            f"textworld generated no winnable game for {params} seed {seed} in "
            f"{MAX_GENERATION_ATTEMPTS} attempts; try other knobs or seeds."
        )
    keep = {GAME_FILE, Path(GAME_FILE).with_suffix(".json").name}
    for stray in folder.iterdir():  # e.g. the Inform 7 source; only the game and its sidecar stay
        if stray.name not in keep and stray.is_file():
            stray.unlink()
    (folder / INFO_FILE).write_text(
        json.dumps({"seed": seed, "generator_seed": generator_seed, **asdict(params)}, indent=1)
    )


def cache_key(params: GameParams, seed: int) -> str:
    """The cache folder name of game ``(params, seed)``."""
    return f"{params.key}-s{int(seed)}-tw{_textworld_version()}-rev{GENERATION_REVISION}"


def generate_game(params: GameParams, seed: int) -> Path:
    """Path of the compiled game ``(params, seed)``, generated on first use and cached on disk."""
    folder = cached_dir(
        "textworld", cache_key(params, seed), lambda tmp: _build(params, int(seed), tmp)
    )
    return folder / GAME_FILE


def game_pool(
    difficulty: str = "medium",
    split: str = "train",
    num_games: int = DEFAULT_NUM_GAMES,
    seeds: Sequence[int] | None = None,
    **knobs: int,
) -> list[Path]:
    """Generates (or loads from the cache) every game of a pool and returns their paths.

    Args:
        difficulty: ``"easy"``, ``"medium"`` or ``"hard"``.
        split: ``"train"`` or ``"test"``.
        num_games: games in the pool.
        seeds: explicit game seeds (overrides ``split``/``num_games``).
        **knobs: ``world_size``, ``nb_objects``, ``quest_length`` overriding the preset.

    Returns:
        The ``.z8`` paths, in seed order; each has its ``.json`` sidecar next to it.
    """
    unknown = sorted(set(knobs) - {"world_size", "nb_objects", "quest_length"})
    if unknown:
        raise InvalidArgumentError(
            f"unknown knob(s) {unknown}; valid knobs are world_size, nb_objects, quest_length."
        )
    params = resolve_params(difficulty, **knobs)
    chosen = list(seeds) if seeds is not None else split_seeds(split, num_games)
    return [generate_game(params, seed) for seed in chosen]
