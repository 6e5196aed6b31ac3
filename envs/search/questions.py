"""Multi-hop questions composed over the world's relations (HotpotQA-style bridge and comparison).

A *bridge* question of k hops walks k relations from a named start entity ("In what year was the
employer of the author of The Zeldom Harbor founded?": work -> author -> employer -> founded);
its supporting passages are the k articles read along the way. A *comparison* question names two
entities, each reached directly or through one relation, and asks which is earlier or later
("Who was born earlier, Vugin Fardruxmaes or the author of The Kuscaem Atlas?"); its hops are the
articles it needs (2, 3 or 4). Each question carries a machine-readable ``plan`` (start names and
relation names, never the answer) that the expert policy follows, reading every value from the
retrieved text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from turngym.envs.search.world import RELATIONS, World

__all__ = ["generate_questions", "HOPS"]

HOPS = (1, 2, 3, 4)
#: "the X of {x}" noun phrases for inner hops.
_PHRASE = {
    "author": "the author of {x}",
    "publisher": "the publisher of {x}",
    "birthplace": "the birthplace of {x}",
    "employer": "the employer of {x}",
    "mentor": "the mentor of {x}",
    "founder": "the founder of {x}",
    "headquarters": "the headquarters city of {x}",
    "region": "the region containing {x}",
    "capital": "the capital of {x}",
}
#: Question forms for the last hop.
_ASK = {
    "author": "Who wrote {x}?",
    "publisher": "Which organisation published {x}?",
    "published": "In what year was {x} first published?",
    "birthplace": "In which city was {x} born?",
    "employer": "Which organisation did {x} work for?",
    "mentor": "Who was the mentor of {x}?",
    "born": "On what date was {x} born?",
    "founder": "Who founded {x}?",
    "headquarters": "In which city is {x} headquartered?",
    "founded": "In what year was {x} founded?",
    "region": "In which region is {x}?",
    "established": "In what year was {x} established?",
    "capital": "What is the capital of {x}?",
}
#: Comparison questions: the chronological attribute of each type and its wording.
_COMPARE = {
    "person": ("born", "Who was born {order}, {a} or {b}?"),
    "work": ("published", "Which work was published {order}, {a} or {b}?"),
    "org": ("founded", "Which organisation was founded {order}, {a} or {b}?"),
    "city": ("established", "Which city was established {order}, {a} or {b}?"),
}
_OUT = {
    kind: [name for name, rel in RELATIONS.items() if rel.source == kind]
    for kind in ("person", "work", "org", "city", "region")
}
_INTO = {kind: [name for name, rel in RELATIONS.items() if rel.target == kind] for kind in _COMPARE}


def _bridge(world: World, hops: int, rng: np.random.Generator) -> dict[str, Any] | None:
    kind = ("work", "person", "org", "city")[int(rng.integers(4))]
    start = int(rng.integers(len(world.names[kind])))
    entity, relations, seen = start, [], [(kind, start)]
    for hop in range(hops):
        last = hop == hops - 1
        options = [r for r in _OUT[kind] if last or RELATIONS[r].target is not None]
        relation = options[int(rng.integers(len(options)))]
        value = world.follow(relation, entity)
        relations.append(relation)
        if last:
            answer = (
                value if isinstance(value, str) else world.names[RELATIONS[relation].target][value]
            )
            break
        kind, entity = RELATIONS[relation].target, int(value)
        if (kind, entity) in seen:
            return None  # a cycle (a region's capital back to the city): no new article to read
        seen.append((kind, entity))
    phrase = world.names[seen[0][0]][start]
    for relation in relations[:-1]:
        phrase = _PHRASE[relation].format(x=phrase)
    return {
        "type": "bridge",
        "question": _ASK[relations[-1]].format(x=phrase),
        "golden_answers": [answer],
        "supporting_ids": [world.passage_id(k, i) for k, i in seen],
        "plan": {"branches": [{"start": world.names[seen[0][0]][start], "relations": relations}]},
    }


def _branch(world: World, kind: str, with_hop: bool, rng: np.random.Generator) -> tuple | None:
    """One side of a comparison: (phrase, plan branch, [(kind, index) read], resolved index)."""
    if not with_hop:
        index = int(rng.integers(len(world.names[kind])))
        return (
            world.names[kind][index],
            {"start": world.names[kind][index], "relations": []},
            [(kind, index)],
            index,
        )
    options = _INTO.get(kind, [])
    if not options:
        return None
    relation = options[int(rng.integers(len(options)))]
    source = RELATIONS[relation].source
    start = int(rng.integers(len(world.names[source])))
    index = int(world.follow(relation, start))
    name = world.names[source][start]
    return (
        _PHRASE[relation].format(x=name),
        {"start": name, "relations": [relation]},
        [(source, start), (kind, index)],
        index,
    )


def _comparison(world: World, hops: int, rng: np.random.Generator) -> dict[str, Any] | None:
    kinds = ["person", "org", "city"] + (["work"] if hops == 2 else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    first = _branch(world, kind, hops == 4, rng)
    second = _branch(world, kind, hops >= 3, rng)
    if first is None or second is None:
        return None
    reads = first[2] + second[2]
    if len(set(reads)) != len(reads):
        return None
    key_a, key_b = world.sort_key(kind, first[3]), world.sort_key(kind, second[3])
    if key_a == key_b:
        return None
    order = ("earlier", "later")[int(rng.integers(2))]
    winner = first if (key_a < key_b) == (order == "earlier") else second
    attribute, template = _COMPARE[kind]
    a, b = (first, second) if rng.random() < 0.5 else (second, first)
    return {
        "type": "comparison",
        "question": template.format(order=order, a=a[0], b=b[0]),
        "golden_answers": [world.names[kind][winner[3]]],
        "supporting_ids": [world.passage_id(k, i) for k, i in reads],
        "plan": {"branches": [a[1], b[1]], "attribute": attribute, "order": order},
    }


def generate_questions(
    world: World, per_hop: int, seed: int = 0, hops: tuple[int, ...] = HOPS
) -> list[dict[str, Any]]:
    """Generates ``per_hop`` distinct questions for each hop count in ``hops``.

    Returns:
        Rows ``{"id", "question", "golden_answers", "supporting_ids", "hops", "type", "plan"}``:
        the questions-JSONL schema of the real-data loader plus the generator's extras.
    """
    rng = np.random.default_rng([seed, world.num_passages, 7])
    rows: list[dict[str, Any]] = []
    for hop in hops:
        seen: set[str] = set()
        attempts = 0
        while len(seen) < per_hop:
            attempts += 1
            if attempts > 200 * per_hop + 1000:
                raise RuntimeError(
                    f"could not compose {per_hop} distinct {hop}-hop questions; use a larger world"
                )
            comparison = hop >= 2 and rng.random() < (0.5 if hop == 2 else 0.3)
            row = _comparison(world, hop, rng) if comparison else _bridge(world, hop, rng)
            if row is None or row["question"] in seen:
                continue
            if (
                any(answer.lower() in row["question"].lower() for answer in row["golden_answers"])
                and row["type"] == "bridge"
            ):
                continue  # the answer must not be given away by the question
            seen.add(row["question"])
            rows.append({"id": f"h{hop}-{len(seen) - 1:05d}", "hops": hop, **row})
    return rows
