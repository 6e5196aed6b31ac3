"""Task progress read from the PDDL state: the fraction of the goal's conditions that hold.

Each task type's goal (``alfworld.gen.goal_library``) is an existential conjunction over the target
object ``o`` (and receptacle ``r``, lamp ``l``). Its static conjuncts (types, ``heatable`` ...) hold
from the start, so progress counts the *dynamic* ones, as a ladder, for the best grounding of ``o``:

==============================  ===========================================================
task type                       conditions (progress = satisfied / total, best object)
==============================  ===========================================================
pick_and_place_simple           has o (held or already in r); inReceptacle(o, r)
pick_{clean,heat,cool}_then...  has o; isClean/isHot/isCool(o); that AND inReceptacle(o, r)
pick_two_obj_and_place          a first o in r; ... held; a second o in r (2 per object: has, in)
look_at_obj_in_light            holds(o); a toggled lamp is in a receptacle at the agent's spot
==============================  ===========================================================

Progress is 1.0 exactly when the engine's own goal check holds (``won``); the env trusts the
engine for success and uses progress only for dense rewards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

__all__ = ["goal_progress", "GoalSpec", "GOAL_STATIC_PREDICATES"]

#: The static predicates :func:`goal_progress` reads; the others it reads change during play.
GOAL_STATIC_PREDICATES = frozenset({"objecttype", "receptacletype", "receptacleatlocation"})


class GoalSpec:
    """The classes a task names (``pddl_params`` of ``traj_data.json``), as the engine spells types."""

    def __init__(
        self, task_type: str, object_target: str, parent_target: str = "", toggle_target: str = ""
    ):
        self.task_type = task_type
        self.object_type = f"{object_target}type".lower()
        self.receptacle_type = f"{parent_target}type".lower() if parent_target else ""
        self.toggle_type = f"{toggle_target}type".lower() if toggle_target else ""

    @classmethod
    def from_traj_data(cls, traj: dict) -> GoalSpec:
        params = traj.get("pddl_params") or {}
        return cls(
            traj["task_type"],
            params.get("object_target") or "",
            params.get("parent_target") or "",
            params.get("toggle_target") or "",
        )


def goal_progress(spec: GoalSpec, facts: Iterable[tuple[str, ...]]) -> float:
    """Fraction of the goal's dynamic conditions satisfied in ``facts`` (engine fact tuples)."""
    by_predicate: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for fact in facts:
        by_predicate[fact[0]].append(fact[1:])
    targets = {args[0] for args in by_predicate["objecttype"] if args[1] == spec.object_type}
    if not targets:
        return 0.0
    held = {args[1] for args in by_predicate["holds"]}
    if spec.task_type == "look_at_obj_in_light":
        return _look_progress(spec, by_predicate, targets, held)
    goal_receptacles = {
        args[0] for args in by_predicate["receptacletype"] if args[1] == spec.receptacle_type
    }
    contents: dict[str, set[str]] = defaultdict(set)
    for obj, receptacle in by_predicate["inreceptacle"]:
        if receptacle in goal_receptacles and obj in targets:
            contents[receptacle].add(obj)
    placed = set().union(*contents.values())
    if spec.task_type == "pick_two_obj_and_place":
        # The goal wants two distinct objects in the *same* receptacle.
        in_place = min(max((len(objs) for objs in contents.values()), default=0), 2)
        carrying = 1 if in_place < 2 and (held & targets) - placed else 0
        return (2 * in_place + carrying) / 4
    state_predicate = {
        "pick_clean_then_place_in_recep": "isclean",
        "pick_heat_then_place_in_recep": "ishot",
        "pick_cool_then_place_in_recep": "iscool",
    }.get(spec.task_type)
    best = 0.0
    for obj in targets:
        has = obj in held or obj in placed
        if state_predicate is None:
            score = (has + (obj in placed)) / 2
        else:
            changed = (obj,) in by_predicate[state_predicate]
            score = (has + changed + (changed and obj in placed)) / 3
        best = max(best, score)
    return best


def _look_progress(spec: GoalSpec, by_predicate: dict, targets: set[str], held: set[str]) -> float:
    agent_at = {args[1] for args in by_predicate["atlocation"]}
    receptacles_here = {
        args[0] for args in by_predicate["receptacleatlocation"] if args[1] in agent_at
    }
    lamps = {args[0] for args in by_predicate["objecttype"] if args[1] == spec.toggle_type}
    toggled = {args[0] for args in by_predicate["istoggled"]} & lamps
    lit_here = any(
        args[0] in toggled and args[1] in receptacles_here for args in by_predicate["inreceptacle"]
    )
    return (bool(held & targets) + lit_here) / 2
