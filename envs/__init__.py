"""Every turngym env id. This file holds only ``register`` calls (entry points load lazily)."""

from turngym.registration import register

# ---------------------------------------------------------------- TextWorld
# -v1: observations without the interpreter's chrome; -v0 (raw text): turngym.make only, unlisted.
for _version, _clean in ((1, True), (0, False)):
    register(
        id=f"turngym/TextWorld-v{_version}",
        entry_point="turngym.envs.textworld.env:TextWorldEnv",
        description="TextWorld quest games generated offline (default: medium difficulty)",
        kwargs={"clean_observations": _clean},
        listed=_clean,
    )
    for _level, _text in (
        ("Easy", "1 room, 1-step quests"),
        ("Medium", "4 rooms, 3-step quests"),
        ("Hard", "8 rooms, 6-step quests"),
    ):
        register(
            id=f"turngym/TextWorld-{_level}-v{_version}",
            entry_point="turngym.envs.textworld.env:TextWorldEnv",
            description=f"TextWorld games, {_level.lower()} preset: {_text}",
            kwargs={"difficulty": _level.lower(), "clean_observations": _clean},
            listed=_clean,
        )

# ---------------------------------------------------------------- toy (tests, demos, learning tests)
register(
    id="turngym/Corridor-v0",
    entry_point="turngym.envs.toy.corridor:CorridorEnv",
    description="A tiny corridor (walk east or west to the exit) for tests and learning demos",
)

# ---------------------------------------------------------------- WebShop
register(
    id="turngym/WebShop-v0",
    entry_point="turngym.envs.webshop.env:WebShopEnv",
    description="WebShop: search, compare and buy what an instruction asks for (10k generated products)",
)
register(
    id="turngym/WebShop-Small-v0",
    entry_point="turngym.envs.webshop.env:WebShopEnv",
    description="WebShop with a 1,000-product generated catalog (fast tests and demos)",
    kwargs={"num_products": 1_000},
)

# ---------------------------------------------------------------- SearchQA (multi-hop QA with a search tool)
register(
    id="turngym/SearchQA-v0",
    entry_point="turngym.envs.search.env:SearchQAEnv",
    description="Multi-hop QA (1-4 hops) with BM25 search over a fictional 10k-passage encyclopedia",
)
for _hops in (1, 2, 3, 4):
    register(
        id=f"turngym/SearchQA-{_hops}hop-v0",
        entry_point="turngym.envs.search.env:SearchQAEnv",
        description=f"SearchQA with {_hops}-hop questions only",
        kwargs={"hops": _hops},
    )

# ---------------------------------------------------------------- SWE sandboxes
register(
    id="turngym/SWE-v0",
    entry_point="turngym.envs.swe.env:SWEEnv",
    description="Fix injected bugs in real PyPI projects with shell/edit tools in Docker or bubblewrap; tests grade",
)

# ---------------------------------------------------------------- ALFWorld (household tasks, ALFWorld's own PDDL engine)
# -v1: the objective only in the instructions; -v0 (objective also in the first observation):
# turngym.make only, unlisted.
for _version, _clean in ((1, True), (0, False)):
    register(
        id=f"turngym/ALFWorld-v{_version}",
        entry_point="turngym.envs.alfworld.env:ALFWorldEnv",
        description="ALFWorld household tasks (all six types) on ALFWorld's PDDL engine, generated over ALFRED's rooms",
        kwargs={"clean_observations": _clean},
        listed=_clean,
    )
    for _name, _task_type in (
        ("PickAndPlace", "pick_and_place_simple"),
        ("LookAtInLight", "look_at_obj_in_light"),
        ("Clean", "pick_clean_then_place_in_recep"),
        ("Heat", "pick_heat_then_place_in_recep"),
        ("Cool", "pick_cool_then_place_in_recep"),
        ("PickTwo", "pick_two_obj_and_place"),
    ):
        register(
            id=f"turngym/ALFWorld-{_name}-v{_version}",
            entry_point="turngym.envs.alfworld.env:ALFWorldEnv",
            description=f"ALFWorld, {_task_type} tasks only",
            kwargs={"task_types": (_task_type,), "clean_observations": _clean},
            listed=_clean,
        )
    register(
        id=f"turngym/ALFWorld-Unseen-v{_version}",
        entry_point="turngym.envs.alfworld.env:ALFWorldEnv",
        description="ALFWorld test tasks in held-out floor plans never used for training (like valid_unseen)",
        kwargs={"split": "test", "rooms": "unseen", "clean_observations": _clean},
        listed=_clean,
    )
