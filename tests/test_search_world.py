"""The generated world and its questions: fictional unique names, facts readable, hop chains real."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from turngym.core import stable_hash
from turngym.envs.search.answer import normalize_answer
from turngym.envs.search.questions import generate_questions
from turngym.envs.search.world import RELATIONS, generate_world


@pytest.fixture(scope="module")
def world():
    return generate_world(2_000, seed=3)


@pytest.fixture(scope="module")
def questions(world):
    return generate_questions(world, per_hop=60, seed=3)


def test_names_are_unique_short_and_invented(world) -> None:
    names = [name for kind in world.names.values() for name in kind]
    assert len(names) == world.num_passages == 2_000
    assert len({normalize_answer(n) for n in names}) == len(names), (
        "every entity needs a distinct name"
    )
    assert max(map(len, names)) < 24, "names must stay under the conformance check's leak threshold"
    common = {"the", "and", "city", "river", "john", "london", "paris", "smith", "king", "war"}
    invented = [w for n in world.names["person"] + world.names["city"] for w in n.lower().split()]
    assert not common & set(invented)


def test_passages_are_deterministic_and_seed_dependent(world) -> None:
    again = generate_world(2_000, seed=3)
    assert list(again.passages())[:50] == list(world.passages())[:50]
    other = generate_world(2_000, seed=4)
    assert list(other.passages())[:5] != list(world.passages())[:5]


def test_generation_is_identical_in_another_process(world) -> None:
    code = (
        "import json; from turngym.core import stable_hash; from turngym.envs.search.world import generate_world;"
        "print(json.dumps(stable_hash(list(generate_world(2000, 3).passages()))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == stable_hash(list(world.passages()))


def test_every_relation_reads_back_from_its_article(world) -> None:
    """The texts hold exactly the facts of the arrays (what the expert and agents rely on)."""
    texts = {pid: text for pid, _, text in world.passages()}
    checked = 0
    for relation, spec in RELATIONS.items():
        for index in range(0, len(world.names[spec.source]), 7):
            text = texts[world.passage_id(spec.source, index)]
            value = world.follow(relation, index)
            expected = value if isinstance(value, str) else world.names[spec.target][value]
            match = spec.pattern.search(text)
            assert match is not None and match["value"] == expected, (relation, text)
            checked += 1
    assert checked > 500


def test_world_is_coherent(world) -> None:
    assert (world.work_year > world.person_year[world.work_author]).all(), (
        "works come after their authors' births"
    )
    assert (world.org_year > world.person_year[world.org_founder]).all()
    mentors = world.person_mentor
    older = world.person_year[mentors] <= world.person_year
    assert older.mean() > 0.99 and (mentors != range(len(mentors))).all()
    assert (world.city_region[world.region_capital] == range(len(world.region_capital))).all()


def test_questions_have_their_hops_of_support(world, questions) -> None:
    texts = {pid: (title, text) for pid, title, text in world.passages()}
    assert {q["hops"] for q in questions} == {1, 2, 3, 4}
    assert len({q["question"] for q in questions}) == len(questions) == 240
    kinds = {(q["hops"], q["type"]) for q in questions}
    assert {(2, "comparison"), (3, "comparison"), (4, "comparison"), (4, "bridge")} <= kinds
    for q in questions:
        support = q["supporting_ids"]
        assert len(support) == len(set(support)) == q["hops"]
        assert all(pid in texts for pid in support)
        answer = q["golden_answers"][0]
        if q["type"] == "bridge":
            # The answer is in the last article of the chain, and the start entity names the first.
            assert answer in texts[support[-1]][1] and answer not in q["question"]
            assert texts[support[0]][0] == q["plan"]["branches"][0]["start"]
            assert len(q["plan"]["branches"][0]["relations"]) == q["hops"]
        else:
            assert answer in {texts[pid][0] for pid in support}
            assert q["plan"]["attribute"] in RELATIONS and q["plan"]["order"] in (
                "earlier",
                "later",
            )


def test_questions_are_deterministic(world, questions) -> None:
    assert generate_questions(world, per_hop=60, seed=3) == questions
    assert generate_questions(world, per_hop=60, seed=4) != questions


def test_too_small_world_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 100"):
        generate_world(50)
