"""ALFRED's rooms as the ``alfworld`` package ships them: floor plans, receptacles and their poses.

Each ``FloorPlan{N}`` has ``{N}-objects.json`` (the object and receptacle classes in the room),
``{N}-openable.json`` (receptacle instance id -> the agent pose that interacts with it:
``[x, z, rotation, horizon]``) and ``{N}-layout.npy`` (the reachable floor points). Rooms are split
as ALFRED splits them: ``TRAIN_SCENE_NUMBERS`` are the *seen* rooms, ``TEST_SCENE_NUMBERS`` the
*unseen* ones (never used by the train split).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Scene", "load_scene", "floor_plans", "room_kind", "layouts_dir", "ROOMS"]

#: ``rooms=`` values: floor plans ALFRED trains on, and the held-out ones.
ROOMS = ("seen", "unseen")
_KIND_BY_HUNDRED = {0: "Kitchen", 2: "LivingRoom", 3: "Bedroom", 4: "Bathroom"}


def layouts_dir() -> Path:
    """The ``alfworld/gen/layouts`` folder of the installed ``alfworld`` package."""
    import alfworld.gen

    return Path(alfworld.gen.__file__).parent / "layouts"


def room_kind(scene_number: int) -> str:
    """``"Kitchen"``, ``"LivingRoom"``, ``"Bedroom"`` or ``"Bathroom"`` (ALFRED's numbering)."""
    return _KIND_BY_HUNDRED[scene_number // 100]


@functools.cache
def floor_plans(rooms: str) -> tuple[int, ...]:
    """The scene numbers of ``rooms`` (``"seen"`` or ``"unseen"``) that have a layout on disk."""
    import alfworld.gen.constants as constants

    numbers = constants.TRAIN_SCENE_NUMBERS if rooms == "seen" else constants.TEST_SCENE_NUMBERS
    folder = layouts_dir()
    return tuple(
        n
        for n in sorted(numbers)
        if (folder / f"FloorPlan{n}-objects.json").is_file()
        and (folder / f"FloorPlan{n}-openable.json").is_file()
    )


@dataclass(frozen=True)
class Scene:
    """One ALFRED room."""

    number: int  # ALFRED scene number (FloorPlan{number})
    kind: str  # Kitchen, LivingRoom, Bedroom or Bathroom
    classes: frozenset[str]  # object and receptacle classes present in the room
    receptacles: tuple[tuple[str, str, tuple[float, float, int, int]], ...]  # (id, class, pose)
    floor: np.ndarray  # reachable floor points, shape (n, 2), metres

    @property
    def name(self) -> str:
        return f"FloorPlan{self.number}"


def _receptacle_class(instance_id: str) -> str:
    # Sinks and bathtubs hold their basin as a sub-object: "Sink|x|y|z|SinkBasin".
    parts = instance_id.split("|")
    return parts[-1] if len(parts) > 4 else parts[0]


@functools.lru_cache(maxsize=256)
def load_scene(number: int) -> Scene:
    """Reads ``FloorPlan{number}`` from the installed ``alfworld`` package."""
    folder = layouts_dir()
    classes = frozenset(json.loads((folder / f"FloorPlan{number}-objects.json").read_text()))
    poses = json.loads((folder / f"FloorPlan{number}-openable.json").read_text())
    receptacles = tuple(
        (instance, _receptacle_class(instance), (float(p[0]), float(p[1]), int(p[2]), int(p[3])))
        for instance, p in sorted(poses.items())
    )
    layout = folder / f"FloorPlan{number}-layout.npy"
    floor = (
        np.load(layout) if layout.is_file() else np.array([[p[0], p[1]] for _, _, p in receptacles])
    )
    return Scene(number, room_kind(number), classes, receptacles, np.asarray(floor, dtype=float))
