"""Every turngym env id. This file holds only ``register`` calls (entry points load lazily)."""

from turngym.registration import register

# ---------------------------------------------------------------- TextWorld
register(
    id="turngym/TextWorld-v0",
    entry_point="turngym.envs.textworld.env:TextWorldEnv",
    description="TextWorld quest games generated offline (default: medium difficulty)",
)
for _level, _text in (
    ("Easy", "1 room, 1-step quests"),
    ("Medium", "4 rooms, 3-step quests"),
    ("Hard", "8 rooms, 6-step quests"),
):
    register(
        id=f"turngym/TextWorld-{_level}-v0",
        entry_point="turngym.envs.textworld.env:TextWorldEnv",
        description=f"TextWorld games, {_level.lower()} preset: {_text}",
        kwargs={"difficulty": _level.lower()},
    )

# ---------------------------------------------------------------- toy (tests, demos, learning tests)
register(
    id="turngym/Corridor-v0",
    entry_point="turngym.envs.toy.corridor:CorridorEnv",
    description="A tiny corridor (walk east or west to the exit) for tests and learning demos",
)
