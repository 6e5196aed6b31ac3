"""The bundled knowledge world: a fictional, coherent encyclopedia generated from a seed.

Five entity types, one encyclopedia article (one passage) each, linked by relations:

==========  =================================  ===============================================
type        relations (-> target)              article says
==========  =================================  ===============================================
person      birthplace -> city, employer ->    "... was born on 3 May 1821 in Dunmere. She
            org, mentor -> person, born (date)  worked for Karsomir Guild and studied under ..."
work        author -> person, publisher ->     "... is a novel written by ... It was first
            org, published (year)              published in 1870 by ..."
org         founder -> person, headquarters    "... is a guild founded in 1790 by ... Its
            -> city, founded (year)            headquarters are in ..."
city        region -> region, established      "... is a port town in Velmoria. It was
            (year)                             established in 1204."
region      capital -> city                    "... is a region whose capital is ..."
==========  =================================  ===============================================

Every name is made of invented syllables (:mod:`names`) and unique, so each question has one
answer and none can be answered from a model's memory. Generation is vectorised with numpy and
rendering is a generator, so a 1M-passage world builds in seconds and streams to disk.
:data:`RELATIONS` holds, next to each relation, the regular expression that reads it back from
an article; the expert policy uses these to *read* answers from retrieved text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from turngym.envs.search.names import WordPool

__all__ = ["World", "Relation", "RELATIONS", "TYPES", "generate_world", "MONTHS"]

TYPES = ("person", "work", "org", "city", "region")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_OCCUPATIONS = (
    "cartographer",
    "glassmaker",
    "astronomer",
    "poet",
    "shipwright",
    "composer",
    "botanist",
    "archivist",
    "engineer",
    "painter",
    "physician",
    "historian",
    "weaver",
    "mathematician",
    "playwright",
    "brewer",
    "sculptor",
    "surveyor",
)
_ORG_KINDS = (
    "Guild",
    "Institute",
    "Academy",
    "Company",
    "Society",
    "Press",
    "Foundry",
    "Bank",
    "Library",
    "Observatory",
)
_WORK_NOUNS = (
    "Lantern",
    "Orchard",
    "Tide",
    "Harbor",
    "Ledger",
    "Compass",
    "Mirror",
    "Garden",
    "Crown",
    "Bridge",
    "Winter",
    "Archive",
    "Voyage",
    "Meadow",
    "Furnace",
    "Atlas",
)
_WORK_KINDS = (
    "novel",
    "poem cycle",
    "treatise",
    "symphony",
    "play",
    "chronicle",
    "atlas",
    "song book",
    "memoir",
)
_CITY_KINDS = ("port town", "market town", "hill city", "river town", "mining town", "city")
_REGION_SUFFIXES = ("ia", "land", " Vale", " Reach", " March")
_TOPICS = (
    "studies of river tides",
    "a survey of coastal salt marshes",
    "designs for lock gates",
    "a catalogue of northern stars",
    "reforms of the guild courts",
    "portraits of merchants",
    "a method for dyeing wool",
    "work on mountain roads",
    "essays on winter festivals",
    "improvements to the printing press",
    "maps of the inland lakes",
)
_PRODUCE = ("amber", "salt", "barley", "wool", "copper", "tea", "timber", "glass", "honey")
_NAME = r"(?P<value>[^.]+?)"

# Article templates. The regex next to each relation must read its value back from them.
PERSON = (
    "{name} is a {occupation} who was born on {date} in {city}. {pronoun} worked for {org} "
    "and studied under {mentor}. {pronoun} is best known for {topic}."
)
PERSON_WORK = " {possessive} works include {work}."
WORK = (
    "{title} is a {kind} written by {author}. It was first published in {year} by "
    "{publisher}. The {kind} is set in {city}."
)
ORG = (
    "{name} is a {kind} founded in {year} by {founder}. Its headquarters are in {city}. "
    "It is known for its trade in {produce}."
)
CITY = (
    "{name} is a {kind} in {region}. It was established in {year}. {name} is known for its "
    "{produce} market."
)
REGION = "{name} is a region whose capital is {capital}. The region is known for {produce}."


@dataclass(frozen=True)
class Relation:
    """One relation: its source type, its target type (None for a date/year) and its reader."""

    source: str
    target: str | None
    pattern: re.Pattern[str]


RELATIONS: dict[str, Relation] = {
    "born": Relation(
        "person", None, re.compile(r"was born on (?P<value>\d{1,2} [A-Z][a-z]+ \d{3,4}) in ")
    ),
    "birthplace": Relation(
        "person",
        "city",
        re.compile(r"was born on \d{1,2} [A-Z][a-z]+ \d{3,4} in " + _NAME + r"\. "),
    ),
    "employer": Relation(
        "person", "org", re.compile(r" worked for " + _NAME + r" and studied under ")
    ),
    "mentor": Relation("person", "person", re.compile(r" and studied under " + _NAME + r"\. ")),
    "author": Relation("work", "person", re.compile(r" written by " + _NAME + r"\. It was first")),
    "published": Relation("work", None, re.compile(r"first published in (?P<value>\d{3,4}) by ")),
    "publisher": Relation(
        "work", "org", re.compile(r"first published in \d{3,4} by " + _NAME + r"\. ")
    ),
    "founded": Relation("org", None, re.compile(r" founded in (?P<value>\d{3,4}) by ")),
    "founder": Relation(
        "org", "person", re.compile(r" founded in \d{3,4} by " + _NAME + r"\. Its ")
    ),
    "headquarters": Relation("org", "city", re.compile(r"headquarters are in " + _NAME + r"\. ")),
    "region": Relation("city", "region", re.compile(r" in " + _NAME + r"\. It was established ")),
    "established": Relation("city", None, re.compile(r"established in (?P<value>\d{3,4})\. ")),
    "capital": Relation("region", "city", re.compile(r"whose capital is " + _NAME + r"\. ")),
}


@dataclass
class World:
    """Entity names and relation arrays of one generated world (indices are per type)."""

    names: dict[str, list[str]]  # type -> names
    person_year: np.ndarray  # birth year
    person_month: np.ndarray  # 0-based month
    person_day: np.ndarray  # day of month
    person_city: np.ndarray  # birthplace (city index)
    person_org: np.ndarray  # employer (org index)
    person_mentor: np.ndarray  # mentor (person index)
    person_occupation: np.ndarray
    person_pronoun: np.ndarray  # 0 she, 1 he, 2 they
    work_author: np.ndarray
    work_publisher: np.ndarray
    work_year: np.ndarray
    work_kind: np.ndarray
    work_city: np.ndarray  # setting, a distractor mention
    org_founder: np.ndarray
    org_city: np.ndarray
    org_year: np.ndarray
    city_region: np.ndarray
    city_year: np.ndarray
    region_capital: np.ndarray
    produce: dict[str, np.ndarray]  # type -> produce index (filler)
    passage_of: dict[str, np.ndarray]  # type -> passage position of each entity
    seed: int

    @property
    def num_passages(self) -> int:
        return sum(len(v) for v in self.names.values())

    def passage_id(self, kind: str, index: int) -> str:
        return f"d{int(self.passage_of[kind][index]):07d}"

    def date(self, person: int) -> str:
        return f"{self.person_day[person]} {MONTHS[self.person_month[person]]} {self.person_year[person]}"

    def follow(self, relation: str, index: int) -> int | str:
        """The value of ``relation`` for entity ``index``: a target index, or a date/year text."""
        table: dict[str, np.ndarray] = {
            "birthplace": self.person_city,
            "employer": self.person_org,
            "mentor": self.person_mentor,
            "author": self.work_author,
            "publisher": self.work_publisher,
            "founder": self.org_founder,
            "headquarters": self.org_city,
            "region": self.city_region,
            "capital": self.region_capital,
            "published": self.work_year,
            "founded": self.org_year,
            "established": self.city_year,
        }
        if relation == "born":
            return self.date(index)
        value = int(table[relation][index])
        return str(value) if RELATIONS[relation].target is None else value

    def sort_key(self, kind: str, index: int) -> tuple[int, int, int]:
        """Chronological key of an entity (birth date, publication, founding, establishment)."""
        if kind == "person":
            return (
                int(self.person_year[index]),
                int(self.person_month[index]),
                int(self.person_day[index]),
            )
        year = {"work": self.work_year, "org": self.org_year, "city": self.city_year}[kind][index]
        return int(year), 0, 0

    def passages(self) -> Iterator[tuple[str, str, str]]:
        """Yields ``(id, title, text)`` for every passage, in id order."""
        order = np.empty(self.num_passages, dtype=np.int64)
        kinds = np.empty(self.num_passages, dtype=np.int8)
        for code, kind in enumerate(TYPES):
            order[self.passage_of[kind]] = np.arange(len(self.names[kind]))
            kinds[self.passage_of[kind]] = code
        first_work = np.full(len(self.names["person"]), -1, dtype=np.int64)
        first_work[self.work_author[::-1]] = np.arange(len(self.work_author))[::-1]
        render = {
            "person": self._person,
            "work": self._work,
            "org": self._org,
            "city": self._city,
            "region": self._region,
        }
        for position, (code, index) in enumerate(zip(kinds.tolist(), order.tolist(), strict=True)):
            kind = TYPES[code]
            text = render[kind](index)
            if kind == "person" and first_work[index] >= 0:
                possessive = ("Her", "His", "Their")[self.person_pronoun[index]]
                text += PERSON_WORK.format(
                    possessive=possessive, work=self.names["work"][first_work[index]]
                )
            yield f"d{position:07d}", self.names[kind][index], text

    def _person(self, i: int) -> str:
        n = self.names
        return PERSON.format(
            name=n["person"][i],
            occupation=_OCCUPATIONS[self.person_occupation[i]],
            date=self.date(i),
            city=n["city"][self.person_city[i]],
            pronoun=("She", "He", "They")[self.person_pronoun[i]],
            org=n["org"][self.person_org[i]],
            mentor=n["person"][self.person_mentor[i]],
            topic=_TOPICS[self.person_occupation[i] % len(_TOPICS)],
        )

    def _work(self, i: int) -> str:
        n = self.names
        return WORK.format(
            title=n["work"][i],
            kind=_WORK_KINDS[self.work_kind[i]],
            author=n["person"][self.work_author[i]],
            year=self.work_year[i],
            publisher=n["org"][self.work_publisher[i]],
            city=n["city"][self.work_city[i]],
        )

    def _org(self, i: int) -> str:
        n = self.names
        kind = n["org"][i].rsplit(" ", 1)[1].lower()
        return ORG.format(
            name=n["org"][i],
            kind=kind,
            year=self.org_year[i],
            founder=n["person"][self.org_founder[i]],
            city=n["city"][self.org_city[i]],
            produce=_PRODUCE[self.produce["org"][i]],
        )

    def _city(self, i: int) -> str:
        return CITY.format(
            name=self.names["city"][i],
            kind=_CITY_KINDS[i % len(_CITY_KINDS)],
            region=self.names["region"][self.city_region[i]],
            year=self.city_year[i],
            produce=_PRODUCE[self.produce["city"][i]],
        )

    def _region(self, i: int) -> str:
        return REGION.format(
            name=self.names["region"][i],
            capital=self.names["city"][self.region_capital[i]],
            produce=_PRODUCE[self.produce["region"][i]],
        )


def _counts(num_passages: int) -> dict[str, int]:
    counts = {
        "region": max(3, num_passages * 3 // 100),
        "city": max(8, num_passages // 10),
        "org": max(8, num_passages * 12 // 100),
        "work": max(8, num_passages * 30 // 100),
    }
    counts["person"] = num_passages - sum(counts.values())
    return counts


def _person_names(pool: WordPool, rng: np.random.Generator, count: int) -> list[str]:
    given = pool.take(max(40, min(4000, count // 4)), syllables=(2, 2), max_chars=8)
    family = pool.take(max(40, count // 2 + 10), syllables=(2, 3), max_chars=11)
    chosen: dict[int, None] = {}  # insertion-ordered set of pair codes
    while len(chosen) < count:
        codes = rng.integers(0, len(given), size=2 * count) * len(family) + rng.integers(
            0, len(family), size=2 * count
        )
        for code in codes.tolist():
            chosen.setdefault(code, None)
            if len(chosen) == count:
                break
    return [f"{given[c // len(family)]} {family[c % len(family)]}" for c in chosen]


def generate_world(num_passages: int, seed: int = 0) -> World:
    """Generates the world of ``num_passages`` passages (>= 100) deterministically from ``seed``."""
    if num_passages < 100:
        raise ValueError(f"num_passages={num_passages} is too small; use at least 100.")
    rng = np.random.default_rng([seed, num_passages])
    counts = _counts(num_passages)
    pool = WordPool(rng)
    names = {
        "person": _person_names(pool, rng, counts["person"]),
        "work": [
            f"The {w} {_WORK_NOUNS[k]}"
            for w, k in zip(
                pool.take(counts["work"], syllables=(2, 2), max_chars=8),
                rng.integers(0, len(_WORK_NOUNS), counts["work"]).tolist(),
                strict=True,
            )
        ],
        "org": [
            f"{w} {_ORG_KINDS[k]}"
            for w, k in zip(
                pool.take(counts["org"], max_chars=10),
                rng.integers(0, len(_ORG_KINDS), counts["org"]).tolist(),
                strict=True,
            )
        ],
        "city": pool.take(counts["city"], max_chars=11),
        "region": [
            w + _REGION_SUFFIXES[k]
            for w, k in zip(
                pool.take(counts["region"], syllables=(2, 2), max_chars=9),
                rng.integers(0, len(_REGION_SUFFIXES), counts["region"]).tolist(),
                strict=True,
            )
        ],
    }
    P, W, N_ORG, C, R = (counts[k] for k in ("person", "work", "org", "city", "region"))
    person_year = rng.integers(1650, 1951, P)
    by_age = np.argsort(person_year * 400 + rng.integers(0, 400, P), kind="stable")
    rank = np.empty(P, dtype=np.int64)
    rank[by_age] = np.arange(P)
    # A mentor is someone older (the eldest person's mentor is the second eldest).
    mentor = by_age[np.floor(rng.random(P) * rank).astype(np.int64)]
    mentor[by_age[0]] = by_age[1]
    author = rng.integers(0, P, W)
    founder = rng.integers(0, P, N_ORG)
    city_region = np.concatenate([np.arange(R), rng.integers(0, R, max(0, C - R))])[:C]
    perm = rng.permutation(num_passages)
    starts = np.cumsum([0] + [counts[k] for k in TYPES])
    return World(
        names=names,
        person_year=person_year,
        person_month=rng.integers(0, 12, P),
        person_day=rng.integers(1, 29, P),
        person_city=rng.integers(0, C, P),
        person_org=rng.integers(0, N_ORG, P),
        person_mentor=mentor,
        person_occupation=rng.integers(0, len(_OCCUPATIONS), P),
        person_pronoun=rng.choice(3, size=P, p=[0.45, 0.45, 0.1]),
        work_author=author,
        work_publisher=rng.integers(0, N_ORG, W),
        work_year=np.minimum(person_year[author] + rng.integers(18, 70, W), 2020),
        work_kind=rng.integers(0, len(_WORK_KINDS), W),
        work_city=rng.integers(0, C, W),
        org_founder=founder,
        org_city=rng.integers(0, C, N_ORG),
        org_year=person_year[founder] + rng.integers(22, 60, N_ORG),
        city_region=city_region,
        city_year=rng.integers(800, 1600, C),
        region_capital=np.arange(R),  # the first city given to each region is its capital
        produce={k: rng.integers(0, len(_PRODUCE), counts[k]) for k in ("org", "city", "region")},
        passage_of={kind: perm[starts[i] : starts[i + 1]] for i, kind in enumerate(TYPES)},
        seed=seed,
    )
