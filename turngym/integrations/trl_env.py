"""turngym envs on TRL's recommended multi-turn path: ``GRPOTrainer(environment_factory=...)``.

TRL 1.16's contract (``trl/trainer/grpo_trainer.py``): ``environment_factory`` is a no-argument
callable returning an environment object; the trainer keeps a pool of them, one per generation;
before each generation it calls ``reset(**row)`` with every column of the dataset row and appends
the returned string to the row's last user message; every public method other than ``reset`` and
``get_reward`` becomes a function-calling tool (its JSON schema from the type hints and Google
docstring, ``transformers.utils.get_json_schema``); ``get_reward()`` scores the finished rollout
(a reward column named after the class, weight 1). TRL's docs advise one named tool per real
operation instead of a generic ``step(action)``, so:

=================== ============================================================================
family              tools
=================== ============================================================================
SWE                 ``bash(command)``, ``view(path, start, end)``, ``edit(path, old, new)``,
                    ``create(path, content)``, ``submit()``: the env's own tool set
WebShop             ``search(keywords)``, ``click(button)``
every other id      ``act(action)``: one free-text command (ALFWorld/TextWorld/Corridor commands,
                    SearchQA's ``search[...]``/``answer[...]``), the syntax is in the instructions
=================== ============================================================================

:func:`environment_factory` returns such a class for any registered id; each tool call is one
env step, its return value the next observation. ``reset`` reads the ``seed`` column (and an
optional ``task`` column) that :func:`~turngym.integrations.trl.make_dataset` writes
(``style="environment_factory"``) and returns the instructions and the first observation.
``get_reward`` is the episode's outcome, 0 for an episode the model did not finish.

Limits (respected, not only documented): the env's turn limit ends the episode, after which a
tool call raises (TRL hands the model the error text); ``max_tool_calling_iterations`` in
``GRPOConfig`` caps tool rounds on TRL's side. The token budget is TRL's ``max_completion_length``,
which on this path counts the whole conversation after the prompt (model tokens and tool results;
TRL rolls back a tool result that would exceed it). This path computes TRL's outcome-level GRPO;
for turn-level credit (GiGPO, SALT, ...) use :class:`~turngym.integrations.trl.TurngymGRPOTrainer`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import turngym  # noqa: F401  (registers every turngym/ id)
from turngym import registration
from turngym.error import InvalidArgumentError

__all__ = [
    "SWEEnvironment",
    "TextEnvironment",
    "TurngymEnvironment",
    "WebShopEnvironment",
    "environment_factory",
]


class TurngymEnvironment:
    """One turngym episode per TRL generation (subclasses add the tools)."""

    #: The registered id and ``turngym.make`` keyword arguments (set by :func:`environment_factory`).
    env_id: ClassVar[str] = ""
    env_kwargs: ClassVar[dict[str, Any]] = {}
    #: Appended to the instructions: how this class's tools replace the env's text syntax.
    tool_note: ClassVar[str] = ""

    def __init__(self) -> None:
        if not self.env_id:
            raise InvalidArgumentError(
                "use turngym.integrations.trl.environment_factory(env_id) to make the class"
            )
        self._env = registration.make(self.env_id, **self.env_kwargs)
        self._done = True
        self._outcome: float | None = None
        self._success: bool | None = None
        #: Tool calls (env steps) of the current episode.
        self.turns = 0
        #: The summed env reward of the current episode.
        self.total_reward = 0.0

    def reset(self, **columns: Any) -> str:
        """Starts the episode of a dataset row (its ``seed`` and optional ``task`` columns)."""
        seed = columns.get("seed")
        if seed is None:
            from turngym.integrations.trl import _seed_of

            seed = _seed_of(columns.get("prompt", ""), 0)  # a rollout_func-style row
        options = {"task": columns["task"]} if columns.get("task") is not None else None
        observation, info = self._env.reset(seed=int(seed), options=options)
        self._done, self._outcome, self._success = False, None, None
        self.turns, self.total_reward = 0, 0.0
        instructions = (info.get("instructions") or "") + self.tool_note
        return f"{instructions}\n\n{observation}" if instructions else str(observation)

    def get_reward(self) -> float:
        """The episode's outcome in [0, 1]; 0 when the model stopped before the episode ended."""
        return float(self._outcome or 0.0) if self._done else 0.0

    def _step(self, action: str) -> str:
        if self._done:
            raise ValueError(
                f"the episode is over ({'turn limit' if self._outcome is None else 'task ended'}"
                f", outcome {self.get_reward():.2f}); stop calling tools"
            )
        observation, reward, terminated, truncated, info = self._env.step(action)
        self.turns += 1
        self.total_reward += float(reward)
        if terminated or truncated:
            self._done = True
            self._outcome = info.get("outcome")
            self._success = info.get("success")
            ending = "turn limit reached" if truncated and not terminated else "task ended"
            return f"{observation}\n\n[episode over: {ending}; outcome {self.get_reward():.2f}]"
        return str(observation)


class TextEnvironment(TurngymEnvironment):
    """A free-text turngym env: one tool, ``act``."""

    def act(self, action: str) -> str:
        """Takes one action in the environment and returns what it shows next.

        Args:
            action: one command in the syntax the instructions give, e.g. "go north" or
                "take key from table".

        Returns:
            The environment's next observation.
        """
        return self._step(action)


class WebShopEnvironment(TurngymEnvironment):
    """WebShop's two real tools: ``search`` and ``click``."""

    tool_note = "\n(Call the search and click tools instead of writing search[...] or click[...].)"

    def search(self, keywords: str) -> str:
        """Searches the shop from the search page.

        Args:
            keywords: the search query, e.g. "red cotton t-shirt under 20 dollars".

        Returns:
            The results page.
        """
        return self._step(f"search[{keywords}]")

    def click(self, button: str) -> str:
        """Clicks a button, a product id on a results page, or an option on a product page.

        Args:
            button: the clickable text as shown, e.g. "B0123ABC", "large", "buy now", "next >".

        Returns:
            The page the click leads to.
        """
        return self._step(f"click[{button}]")


def _call(tool: str, **fields: Any) -> str:
    return json.dumps({"tool": tool, **{k: v for k, v in fields.items() if v is not None}})


class SWEEnvironment(TurngymEnvironment):
    """The SWE env's tools (``turngym.envs.swe.actions``) as named, typed methods."""

    tool_note = "\n(Call the bash, view, edit, create and submit tools instead of writing JSON.)"

    def bash(self, command: str) -> str:
        """Runs a shell command in the repository root.

        Args:
            command: the command line, e.g. "pytest -q tests/test_util.py".

        Returns:
            The command's exit status and output.
        """
        return self._step(_call("bash", command=command))

    def view(self, path: str, start: int | None = None, end: int | None = None) -> str:
        """Shows a file's numbered lines.

        Args:
            path: the file, relative to the repository root.
            start: the first line to show (default: the first).
            end: the last line to show (default: the last).

        Returns:
            The numbered lines.
        """
        return self._step(_call("view", path=path, start=start, end=end))

    def edit(self, path: str, old: str, new: str) -> str:
        """Replaces the one occurrence of a text in a file.

        Args:
            path: the file, relative to the repository root.
            old: the exact text to replace; it must occur exactly once.
            new: the replacement text.

        Returns:
            Whether the edit was applied.
        """
        return self._step(_call("edit", path=path, old=old, new=new))

    def create(self, path: str, content: str) -> str:
        """Writes a file (creating or overwriting it).

        Args:
            path: the file, relative to the repository root.
            content: the full text of the file.

        Returns:
            Whether the file was written.
        """
        return self._step(_call("create", path=path, content=content))

    def submit(self) -> str:
        """Ends the episode: the tests then grade the changes.

        Returns:
            The grading result.
        """
        return self._step(_call("submit"))


def _family_class(env_id: str) -> type[TurngymEnvironment]:
    try:
        entry_point = str(registration.spec(env_id).entry_point)
    except InvalidArgumentError:
        import turngym

        raise InvalidArgumentError(
            f"unknown env id {env_id!r}; registered ids: {', '.join(sorted(turngym.list_envs()))}"
        ) from None
    if ".envs.swe" in entry_point:
        return SWEEnvironment
    if ".envs.webshop" in entry_point:
        return WebShopEnvironment
    return TextEnvironment


def environment_factory(
    env_id: str, env_kwargs: dict[str, Any] | None = None
) -> type[TurngymEnvironment]:
    """The ``environment_factory`` class for ``env_id`` (see the module docstring).

    Args:
        env_id: a registered turngym id.
        env_kwargs: keyword arguments for ``turngym.make`` (e.g. ``{"max_turns": 10}``).

    Returns:
        A class with a no-argument constructor; pass it as ``GRPOTrainer(environment_factory=)``.
    """
    base = _family_class(env_id)
    name = "".join(c for c in env_id.split("/")[-1].title() if c.isalnum()) + "Environment"
    return type(name, (base,), {"env_id": env_id, "env_kwargs": dict(env_kwargs or {})})
