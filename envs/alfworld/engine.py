"""ALFWorld's text engine: TextWorld's PDDL backend with ALFWorld's domain, grammar and names.

:class:`AlfredEngine` is exactly the stack ALFWorld's ``AlfredTWEnv`` plays through:
``textworld.envs.PddlEnv`` (Fast Downward's translator and search library underneath) wrapped by
``alfworld.agents.environment.alfred_tw_env.AlfredDemangler`` (ALFRED ids -> "apple 1"). Nothing
here re-implements the game: commands, feedback, admissible commands, facts and ``won`` all come
from the engine.

:func:`install_speedups` makes the engine cheaper without changing a single output (the tests
compare against an unpatched engine in a fresh process): Fast Downward's PDDL -> SAS translation
is a pure function of the domain and problem text, so it is memoised in memory and on disk
(TextWorld re-translates the same problem twice on every ``reset``; a kitchen takes ~1 s); the text grammar's template and condition parses (TatSu)
are memoised per string; and the grammar's context copies become dict copies (it never mutates
what the dicts hold). These are process-wide patches of ``fast_downward.pddl2sas`` and of
``textworld.envs.pddl.textgen`` (``_parse_and_convert``, ``Rule``, ``copy_context``), the module
that renders the PDDL backend's text and nothing else.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import pickle
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from turngym.cache import cached_dir
from turngym.error import missing_dependency

__all__ = [
    "AlfredEngine",
    "install_speedups",
    "domain_and_grammar",
    "request_infos",
    "canonical_state",
    "STATIC_PREDICATES",
]

#: Facts that never change in ALFWorld's domain; left out of the canonical state.
STATIC_PREDICATES = frozenset(
    {
        "receptacletype",
        "objecttype",
        "receptacleatlocation",
        "cancontain",
        "openable",
        "pickupable",
        "cleanable",
        "heatable",
        "coolable",
        "toggleable",
        "sliceable",
        "isreceptacleobject",
        "moveable",
    }
)
#: Bookkeeping facts that "look"/"examine"/"inventory" set and no goal reads.
BOOKKEEPING_PREDICATES = frozenset({"checked", "examined"})
_TRANSLATIONS = 16  # translated problems kept in memory (a few MB each)
_installed = False


def _import_engine() -> Any:
    try:
        import textworld
        import textworld.envs.pddl.pddl  # noqa: F401 - fails early when fast_downward is missing
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("alfworld", "alfworld") from error
    return textworld, AlfredDemangler


def install_speedups() -> None:
    """Memoises the engine's pure, repeated work (translation and template parsing); idempotent."""
    global _installed
    if _installed:
        return
    import fast_downward
    import textworld.envs.pddl.textgen as textgen

    translate = fast_downward.pddl2sas
    translations: OrderedDict[tuple[str, bool], Any] = OrderedDict()

    @functools.wraps(translate)
    def cached_translate(
        domain: str, problem: str, verbose: bool = False, optimize: bool = False
    ) -> Any:
        key = (hashlib.sha1((domain + "\0" + problem).encode()).hexdigest(), bool(optimize))
        if key in translations:
            translations.move_to_end(key)
            return translations[key]
        result = _stored_translation(translate, domain, problem, bool(optimize), key[0])
        translations[key] = result
        if len(translations) > _TRANSLATIONS:
            translations.popitem(last=False)
        return result

    parse = textgen._parse_and_convert
    parses: dict[tuple[Any, ...], Any] = {}

    @functools.wraps(parse)
    def cached_parse(text: str, rule_name: str | None = None, **kwargs: Any) -> Any:
        if kwargs.get("trace"):
            return parse(text, rule_name=rule_name, **kwargs)
        key = (text, rule_name)
        if key not in parses:
            parses[key] = parse(text, rule_name=rule_name)
        # Callers attach contexts to the returned symbols: hand out a fresh copy each time.
        return copy.deepcopy(parses[key])

    class CachedQueryRule(textgen.Rule):
        """``Rule`` whose conjunctive-query parses are memoised (textgen only reads them)."""

        _queries: dict[str, Any] = {}

        @classmethod
        def parse_conjunctive_query(cls, expression: str) -> Any:
            if expression not in cls._queries:
                cls._queries[expression] = super().parse_conjunctive_query(expression)
            return cls._queries[expression]

    def shallow_copy_context(context: dict[str, Any]) -> dict[str, Any]:
        # textgen only adds keys to a context's variables/mapping dicts and never mutates the
        # entity infos and placeholders inside them, so copying the dicts is enough.
        return {
            **context,
            "variables": dict(context["variables"]),
            "mapping": dict(context["mapping"]),
        }

    fast_downward.pddl2sas = cached_translate
    textgen._parse_and_convert = cached_parse
    textgen.Rule = CachedQueryRule  # textgen's own reference; textworld.logic.Rule is untouched
    textgen.copy_context = shallow_copy_context
    _installed = True


def _stored_translation(
    translate: Any, domain: str, problem: str, optimize: bool, digest: str
) -> Any:
    """A translation from the on-disk cache (written on first use): unpickling beats translating 100x.

    The key holds the translator's version, so a new ``fast_downward_textworld`` never reads an old
    pickle; the files live in turngym's own cache folder, verified by checksum like every artefact.
    """
    from importlib.metadata import version

    def build(folder: Path) -> None:
        result = translate(domain, problem, optimize=optimize)
        (folder / "translation.pkl.z").write_bytes(zlib.compress(pickle.dumps(result, protocol=5)))

    key = f"fd{version('fast_downward_textworld')}-{digest}-{'opt' if optimize else 'plain'}"
    folder = cached_dir("alfworld-sas", key, build)
    return pickle.loads(zlib.decompress((folder / "translation.pkl.z").read_bytes()))


@functools.lru_cache(maxsize=1)
def domain_and_grammar() -> tuple[str, str]:
    """ALFWorld's PDDL domain (``alfred.pddl``) and TextWorld grammar (``alfred.twl2``)."""
    try:
        from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH
    except ImportError as error:  # pragma: no cover
        raise missing_dependency("alfworld", "alfworld") from error
    return Path(ALFRED_PDDL_PATH).read_text(), Path(ALFRED_TWL2_PATH).read_text()


def request_infos() -> Any:
    """The ``textworld.EnvInfos`` the env asks for (the speed benchmark's baseline uses it too)."""
    textworld, _ = _import_engine()
    return textworld.EnvInfos(admissible_commands=True, won=True)


class AlfredEngine:
    """One ALFWorld game engine (``PddlEnv`` + ``AlfredDemangler``), reloadable with other games."""

    def __init__(self, speedups: bool = True) -> None:
        textworld, demangler = _import_engine()
        if speedups:
            install_speedups()
        from textworld.envs.pddl import PddlEnv

        self._pddl = PddlEnv(request_infos())
        self._env = demangler(self._pddl, shuffle=False)
        self._loaded: Path | None = None
        self.state: Any = None

    def load(self, game_file: Path, force: bool = False) -> None:
        """Loads a ``game.tw-pddl`` (no-op when it is already loaded, unless ``force``: rewritten file)."""
        if force or self._loaded != game_file:
            # Handing TextWorld the parsed data, not the path: PddlEnv.load(path) leaves its file
            # handle open (json.load(open(path))), a ResourceWarning on every (re)build.
            self._env.load(json.loads(Path(game_file).read_text()))
            self._loaded = game_file

    def reset(self) -> Any:
        """Restarts the loaded game; returns TextWorld's ``GameState``."""
        self.state = self._env.reset()
        return self.state

    def step(self, command: str) -> Any:
        """Plays one command (an admissible one: anything else is "Nothing happens.")."""
        self.state, _, _ = self._env.step(command)
        return self.state

    @property
    def admissible_commands(self) -> list[str]:
        return list(self.state["admissible_commands"]) if self.state is not None else []

    @property
    def won(self) -> bool:
        return bool(self.state is not None and self.state["won"])

    def facts(self, skip: frozenset[str] = frozenset()) -> list[tuple[str, ...]]:
        """The PDDL state as ``(predicate, arg, ...)`` tuples of engine names (lower-case ids).

        ``skip``: predicates left out (e.g. :data:`STATIC_PREDICATES` when only changes matter).
        """
        if self.state is None:
            return []
        return [
            (f.name, *(v.name for v in f.arguments))
            for f in self.state["_facts"]
            if f.name not in skip
        ]

    def plan(self) -> list[str]:
        """A plan from the current state by the engine's own planner (Fast Downward's ``replan``).

        ALFWorld's ``AlfredExpert(expert_type="planner")`` reads the same plan; used for games whose
        file carries no walkthrough.
        """
        if self.state is None:
            raise RuntimeError(
                "AlfredEngine.plan() needs a loaded and reset game; call load() and reset()"
            )
        return [str(command) for command in self._pddl._pddl_state.replan(self._pddl._entity_infos)]

    def names(self) -> dict[str, str]:
        """Engine id -> the name ALFWorld shows (``"apple_bar__plus_01..."`` -> ``"apple 1"``)."""
        infos = self._pddl._entity_infos
        return {key: info.name.strip() for key, info in infos.items()}

    def close(self) -> None:
        self._env.close()
        self._loaded, self.state = None, None


def _is_state_atom(predicate: str) -> bool:
    # The translated task also tracks "not_<predicate>" atoms for facts that were deleted, and they
    # stay after the positive fact returns; they depend on the path taken, not on the state (the
    # positive atoms alone are the PDDL state), as do Fast Downward's derived "new-axiom@" atoms.
    return not (
        predicate in STATIC_PREDICATES
        or predicate in BOOKKEEPING_PREDICATES
        or predicate.startswith(("not_", "new-axiom@"))
    )


def canonical_state(facts: list[tuple[str, ...]]) -> list[str]:
    """The sorted dynamic positive facts: equal PDDL states give equal lists, whatever the path or text."""
    return sorted(" ".join(f) for f in facts if _is_state_atom(f[0]))
