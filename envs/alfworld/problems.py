"""Procedural ALFWorld problems: PDDL problems of the six task types over ALFRED's real rooms.

A problem is drawn from ``(task_type, seed, rooms)`` alone: a floor plan of the ``rooms`` split
where the task type makes sense (ALFRED's ``GOALS_VALID`` room kinds, plus the appliance the task
needs), the task's targets, and a placement of 1-3 instances of every pickupable class of the room
into receptacles that can hold them (ALFRED's ``VAL_RECEPTACLE_OBJECTS``). The goal is ALFRED's
own PDDL goal template (``alfworld.gen.goal_library``). Target objects never start inside a target
receptacle, so no task is won at turn 0; solvability is then proven by the engine's planner
(:mod:`turngym.envs.alfworld.games`).

The text written is exactly what ALFWorld's ``initial_state.pddl`` holds: ALFRED's mangled ids
(``Apple|+01.20|+00.90|-02.30`` -> ``Apple_bar__plus_01_dot_20_...``), ``canContain`` facts for the
classes in the room, and ``loc|x|z|rotation|horizon`` locations in grid units of 0.25 m.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from turngym.envs.alfworld.scenes import Scene, floor_plans, load_scene

__all__ = ["TASK_TYPES", "Problem", "generate_problem", "mangle", "task_description"]

#: ALFWorld's six task types, in ALFWorld's order (``alfred_tw_env.TASK_TYPES``).
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: The appliance (receptacle class) a state-change task needs, and the object property it sets.
_APPLIANCE = {
    "pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable"),
    "pick_heat_then_place_in_recep": ("Microwave", "Heatable"),
    "pick_cool_then_place_in_recep": ("Fridge", "Coolable"),
}
_LAMPS = ("DeskLamp", "FloorLamp")
_LAMP_STANDS = {"Desk", "SideTable", "Dresser", "Shelf", "CoffeeTable", "DiningTable", "TVStand"}
_MANGLE = (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_"))
MAX_INSTANCES = 3  # ALFRED's MAX_NUM_OF_OBJ_INSTANCES
_ATTEMPTS = 64


def mangle(name: str) -> str:
    """ALFRED's id -> PDDL name mapping (``PlannedGameState.fix_pddl_str_chars``)."""
    for old, new in _MANGLE:
        name = name.replace(old, new)
    return name


def _constants() -> Any:
    import alfworld.gen.constants as constants

    return constants


@dataclass
class Problem:
    """A generated problem: ALFRED's ``traj_data`` fields and the PDDL problem text."""

    task_type: str
    seed: int
    rooms: str
    scene: Scene
    object_target: str
    parent_target: str  # "" for look_at_obj_in_light
    toggle_target: str  # "" unless look_at_obj_in_light
    pddl_problem: str
    description: str
    #: (object id, class, receptacle id it starts in), ALFRED ids.
    objects: list[tuple[str, str, str]] = field(default_factory=list)
    #: (receptacle id, class), ALFRED ids.
    receptacles: list[tuple[str, str]] = field(default_factory=list)

    def traj_data(self, task_id: str) -> dict[str, Any]:
        """The ``traj_data.json`` of this problem (the fields ALFWorld's loaders and expert read)."""
        return {
            "task_id": task_id,
            "task_type": self.task_type,
            "pddl_params": {
                "object_target": self.object_target,
                "parent_target": self.parent_target,
                "toggle_target": self.toggle_target,
                "mrecep_target": "",
                "object_sliced": False,
            },
            "scene": {
                "floor_plan": self.scene.name,
                "scene_num": self.scene.number,
                "random_seed": self.seed,
            },
            "turk_annotations": {
                "anns": [
                    {"task_desc": self.description, "high_descs": [], "assignment_id": "turngym"}
                ]
            },
            "turngym": {
                "generator": "turngym.envs.alfworld.problems",
                "rooms": self.rooms,
                "seed": self.seed,
            },
        }


def task_description(task_type: str, obj: str, recep: str, toggle: str, template: int) -> str:
    """ALFWorld's templated goal text (``goal_library.gdict[...]['templates']``)."""
    import alfworld.gen.goal_library as goal_library

    templates = goal_library.gdict[task_type]["templates"]
    return templates[template % len(templates)].format(
        obj=obj.lower(), recep=recep.lower(), toggle=toggle.lower(), mrecep=""
    )


def _pickupable() -> set[str]:
    constants = _constants()
    holdable = set().union(*constants.VAL_RECEPTACLE_OBJECTS.values()) | set(
        constants.MOVABLE_RECEPTACLES
    )
    return {c for c in holdable if "Sliced" not in c and c in constants.OBJECTS}


def _static_receptacles() -> set[str]:
    constants = _constants()
    return set(constants.RECEPTACLES) - set(constants.MOVABLE_RECEPTACLES)


def _choose_targets(
    task_type: str, scene: Scene, receptacle_classes: set[str], rng: np.random.Generator
) -> tuple[str, str, str] | None:
    constants = _constants()
    holds = constants.VAL_RECEPTACLE_OBJECTS
    objects = sorted(scene.classes & _pickupable())
    if task_type == "look_at_obj_in_light":
        lamps = [lamp for lamp in _LAMPS if lamp in scene.classes]
        if not lamps or not objects:
            return None
        return str(rng.choice(objects)), "", str(rng.choice(lamps))
    appliance, ability = _APPLIANCE.get(task_type, (None, None))
    if appliance is not None:
        if appliance not in receptacle_classes:
            return None
        objects = [o for o in objects if o in constants.VAL_ACTION_OBJECTS[ability]]
    pairs = [
        (obj, recep)
        for obj in objects
        for recep in sorted(receptacle_classes)
        if recep != appliance
        and obj in holds.get(recep, ())
        # the target must be able to start somewhere else
        and any(obj in holds.get(r, ()) for r in receptacle_classes if r != recep)
    ]
    if not pairs:
        return None
    obj, recep = pairs[int(rng.integers(len(pairs)))]
    return obj, recep, ""


def _location(pose: tuple[float, float, int, int], taken: set[str]) -> str:
    x, z, rotation, horizon = pose
    gx, gz, rot = int(round(x / 0.25)), int(round(z / 0.25)), int(rotation) // 90 % 4
    # Two receptacles can share an interaction pose; a location per receptacle keeps "go to X" one-to-one.
    while True:
        name = f"loc|{gx}|{gz}|{rot}|{int(horizon)}"
        if name not in taken:
            taken.add(name)
            return name
        horizon += 15


def _coordinates(instance_id: str) -> tuple[float, float, float] | None:
    parts = instance_id.split("|")
    try:
        return float(parts[1]), float(parts[2]), float(parts[3])
    except (IndexError, ValueError):
        return None


def _object_id(
    cls: str, near: tuple[float, float, float], rng: np.random.Generator, taken: set[str]
) -> str:
    while True:
        x, y, z = (c + float(rng.uniform(-0.3, 0.3)) for c in near)
        name = f"{cls}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"
        if name not in taken:
            taken.add(name)
            return name


def generate_problem(task_type: str, seed: int, rooms: str = "seen", attempt: int = 0) -> Problem:
    """Draws the problem of ``(task_type, seed, rooms, attempt)``; equal arguments, equal problems.

    ``attempt`` lets a caller re-draw deterministically (e.g. after a failed verification).

    Raises:
        RuntimeError: no valid problem after many draws (cannot happen with ALFRED's rooms).
    """
    for draw in range(_ATTEMPTS):
        rng = np.random.default_rng([seed, TASK_TYPES.index(task_type), attempt, draw])
        problem = _draw(task_type, seed, rooms, rng)
        if problem is not None:
            return problem
    raise RuntimeError(f"no valid {task_type} problem for seed {seed} in {rooms} rooms")


def _eligible_scenes(task_type: str, rooms: str) -> list[int]:
    valid_kinds = _constants().GOALS_VALID[task_type]
    return [n for n in floor_plans(rooms) if load_scene(n).kind in valid_kinds]


def _draw(task_type: str, seed: int, rooms: str, rng: np.random.Generator) -> Problem | None:
    constants = _constants()
    scenes = _eligible_scenes(task_type, rooms)
    scene = load_scene(scenes[int(rng.integers(len(scenes)))])
    static = _static_receptacles()
    receptacles = [(rid, cls, pose) for rid, cls, pose in scene.receptacles if cls in static]
    present = {cls for _, cls, _ in receptacles}
    for cls in sorted((scene.classes & static) - present):  # appliances the pose file lacks
        point = scene.floor[int(rng.integers(len(scene.floor)))]
        count = int(rng.integers(2, 5)) if cls == "StoveBurner" else 1
        for k in range(count):
            coords = (point[0] + 0.3 * k, 0.9, point[1])
            rid = f"{cls}|{coords[0]:+06.2f}|{coords[1]:+06.2f}|{coords[2]:+06.2f}"
            receptacles.append((rid, cls, (point[0], point[1], int(rng.integers(4)) * 90, 30)))
        present.add(cls)
    targets = _choose_targets(task_type, scene, present, rng)
    if targets is None:
        return None
    obj_target, recep_target, toggle_target = targets

    taken_locations: set[str] = set()
    location_of = {rid: _location(pose, taken_locations) for rid, _, pose in receptacles}
    start = scene.floor[int(rng.integers(len(scene.floor)))]
    agent_location = _location((start[0], start[1], int(rng.integers(4)) * 90, 30), taken_locations)

    objects: list[tuple[str, str, str]] = []  # (object id, class, receptacle id)
    taken_ids = {rid for rid, _, _ in receptacles}
    holds = constants.VAL_RECEPTACLE_OBJECTS
    for cls in sorted(scene.classes & (_pickupable() | set(_LAMPS))):
        if cls in _LAMPS:
            if cls != toggle_target:
                continue
            # Lamps stand on furniture; ToggleObject needs the lamp "in" a receptacle at the agent's spot.
            options = [r for r in receptacles if r[1] in _LAMP_STANDS] or [
                r for r in receptacles if r[1] not in constants.OPENABLE_CLASS_SET
            ]
            count = 1
        else:
            options = [r for r in receptacles if cls in holds.get(r[1], ())]
            if cls == obj_target:
                options = [r for r in options if r[1] != recep_target]
            low = 2 if cls == obj_target and task_type == "pick_two_obj_and_place" else 1
            count = int(rng.integers(low, MAX_INSTANCES + 1))
        if not options:
            continue
        for _ in range(count):
            rid, _, _ = options[int(rng.integers(len(options)))]
            near = _coordinates(rid) or (0.0, 0.9, 0.0)
            objects.append((_object_id(cls, near, rng, taken_ids), cls, rid))
    if not any(cls == obj_target for _, cls, _ in objects):
        return None
    description = task_description(
        task_type, obj_target, recep_target, toggle_target, int(rng.integers(2))
    )
    text = _pddl(
        task_type,
        obj_target,
        recep_target,
        toggle_target,
        receptacles,
        objects,
        location_of,
        agent_location,
        seed,
    )
    return Problem(
        task_type,
        seed,
        rooms,
        scene,
        obj_target,
        recep_target,
        toggle_target,
        text,
        description,
        objects,
        [(rid, cls) for rid, cls, _ in receptacles],
    )


def _pddl(
    task_type: str,
    obj: str,
    recep: str,
    toggle: str,
    receptacles: list,
    objects: list,
    location_of: dict[str, str],
    agent_location: str,
    seed: int,
) -> str:
    import alfworld.gen.goal_library as goal_library

    constants = _constants()
    holds = constants.VAL_RECEPTACLE_OBJECTS
    actions = constants.VAL_ACTION_OBJECTS
    otypes = sorted({cls for _, cls, _ in objects} | {obj} | ({toggle} if toggle else set()))
    rtypes = sorted({cls for _, cls, _ in receptacles} | ({recep} if recep else set()))
    declarations = ["agent1 - agent"]
    declarations += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    declarations += [f"{mangle(oid)} - object" for oid, _, _ in objects]
    declarations += [f"{mangle(rid)} - receptacle" for rid, _, _ in receptacles]
    declarations += [
        f"{mangle(loc)} - location" for loc in sorted(set(location_of.values()) | {agent_location})
    ]

    facts = [f"(atLocation agent1 {mangle(agent_location)})"]
    for rid, cls, _ in receptacles:
        name = mangle(rid)
        facts.append(f"(receptacleType {name} {cls}Type)")
        facts.append(f"(receptacleAtLocation {name} {mangle(location_of[rid])})")
        if cls in constants.OPENABLE_CLASS_SET:
            facts.append(f"(openable {name})")
    for oid, cls, rid in objects:
        name = mangle(oid)
        facts.append(f"(objectType {name} {cls}Type)")
        facts.append(f"(inReceptacle {name} {mangle(rid)})")
        facts.append(f"(objectAtLocation {name} {mangle(location_of[rid])})")
        if cls not in _LAMPS:
            facts.append(f"(pickupable {name})")
        if cls in constants.MOVABLE_RECEPTACLES_SET:
            facts.append(f"(isReceptacleObject {name})")
        for ability, predicate in (
            ("Cleanable", "cleanable"),
            ("Heatable", "heatable"),
            ("Coolable", "coolable"),
            ("Toggleable", "toggleable"),
            ("Sliceable", "sliceable"),
        ):
            if cls in actions[ability]:
                facts.append(f"({predicate} {name})")
    present = {cls for _, cls, _ in objects}
    for rtype in rtypes:
        facts += [
            f"(canContain {rtype}Type {o}Type)"
            for o in sorted(holds.get(rtype, ()))
            if o in present
        ]

    goal = goal_library.gdict[task_type]["pddl"].format(
        obj=obj, recep=recep, toggle=toggle, mrecep=""
    )
    goal = goal.replace("#", "-")
    indent = "\n        "
    text = (
        f"(define (problem plan_turngym_{task_type}_{seed})\n"
        "    (:domain alfred)\n"
        f"    (:objects{indent}{indent.join(declarations)}\n    )\n"
        f"    (:init{indent}{indent.join(facts)}\n    )\n"
        f"{goal}"
    )
    return text
