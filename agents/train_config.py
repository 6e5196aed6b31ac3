"""What ``turngym train`` checks before it loads a model: the config file, the env, the resume.

- :func:`read_config_file` turns a JSON/YAML/TOML syntax error into one line naming the file and
  the place, instead of the parser's traceback.
- :func:`check_env` builds the env once with the config's ``env_kwargs`` (a typo in the id or a
  keyword costs a second, not a model load); credit kwargs are checked by ``LearnerConfig``.
- :func:`resume_plan` compares the config with the one stored in the checkpoint: a rerun of a
  finished run has nothing to do, and a changed config is refused unless ``--force``.
- :func:`field_docs` reads each ``LearnerConfig`` field's ``#:`` comment from the source, for
  ``turngym train --help`` and the commented example of ``--init-config``.
- ``model: "tiny:"`` builds (once, cached) the offline tiny model of :mod:`turngym.agents.tiny`
  for the config's env, so a config trains without downloading anything.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from turngym.error import InvalidArgumentError

__all__ = [
    "RESUME_NEUTRAL",
    "TINY",
    "ResumePlan",
    "check_env",
    "example_config",
    "field_docs",
    "read_config_file",
    "resolve_tiny_model",
    "resume_plan",
]

#: The ``model`` value that stands for the offline tiny model (built for the config's env).
TINY = "tiny:"

#: Fields that may change between a run and its resume without changing what is trained.
RESUME_NEUTRAL = frozenset(
    {
        "steps",
        "output_dir",
        "resume",
        "eval_every",
        "eval_groups",
        "save_every",
        "tensorboard",
        "wandb_project",
        "progress",
        "device",
        "num_envs",
        "env_workers",
        "generation_batch_size",
    }
)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a ``.json``, ``.yaml``/``.yml`` or ``.toml`` file (a top-level ``learner``
    table is unwrapped); every problem is an :class:`InvalidArgumentError` of one line."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(
            f"config file {path} does not exist; `turngym train --init-config {path}` writes one"
        )
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = getattr(error, "problem", None) or str(error).splitlines()[0]
                raise InvalidArgumentError(
                    f"config file {path} is not valid YAML{where}: {problem}"
                ) from None
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            raise InvalidArgumentError(
                f"config file {path}: use a .json, .yaml, .yml or .toml file"
            )
    except ValueError as error:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        if isinstance(error, InvalidArgumentError):
            raise
        kind = "JSON" if suffix == ".json" else "TOML"
        raise InvalidArgumentError(f"config file {path} is not valid {kind}: {error}") from None
    if isinstance(data, dict) and set(data) == {"learner"}:
        data = data["learner"]
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"config file {path} must hold a mapping of LearnerConfig fields (name: value)"
        )
    return data


def check_env(env_id: str, env_kwargs: dict[str, Any], what: str = "env_kwargs") -> None:
    """Builds and closes ``env_id`` with ``env_kwargs``; raises one-line errors for either
    (``what`` names the kwargs' source in the message, e.g. ``--env-kwargs``)."""
    from turngym.envs.orchestra.presets import ORCHESTRA_ENVS

    try:
        if env_id in ORCHESTRA_ENVS:
            from turngym.envs import orchestra

            env = orchestra.parallel_env(env_id, **env_kwargs)
        else:
            import turngym

            env = turngym.make(env_id, **env_kwargs)
    except TypeError as error:
        raise InvalidArgumentError(
            f"{what} {env_kwargs} do not fit {env_id}: {str(error).splitlines()[0]}"
        ) from None
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{env_id} with {what} {env_kwargs}: {error}") from None
    env.close()


def resolve_tiny_model(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``model: "tiny:"`` replaced by the folder of the tiny model for its env."""
    if data.get("model") != TINY:
        return data
    from turngym.agents.tiny import tiny_model_dir

    env_kwargs = dict(data.get("env_kwargs") or {})
    env_id = data.get("env_id", "turngym/Corridor-v0")
    path = tiny_model_dir(
        env_ids=[env_id], env_kwargs=env_kwargs, expert_fraction=0.3, warmup_steps=100
    )
    return {**data, "model": str(path)}


class ResumePlan:
    """What a run does with ``output_dir``'s checkpoint.

    Attributes:
        checkpoint: the checkpoint folder, or None for a fresh run.
        iteration: iterations the checkpoint has done (0 for a fresh run).
        changed: ``{field: (checkpoint value, config value)}`` of fields that change training.
    """

    def __init__(self, checkpoint: Path | None, iteration: int, changed: dict[str, tuple]):
        self.checkpoint, self.iteration, self.changed = checkpoint, iteration, changed

    def describe_changes(self) -> str:
        """``name: old -> new`` for every changed field, comma-separated."""
        return ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in self.changed.items())


def resume_plan(config: Any) -> ResumePlan:
    """Reads ``config.output_dir/checkpoint`` (when ``config.resume``) and compares configs."""
    from turngym.agents.learner_io import find_checkpoint

    checkpoint = find_checkpoint(Path(config.output_dir) / "checkpoint") if config.resume else None
    if checkpoint is None:
        return ResumePlan(None, 0, {})
    state = json.loads((checkpoint / "state.json").read_text())
    old = json.loads(json.dumps(state.get("config", {})))
    new = json.loads(json.dumps(config.to_dict()))
    changed = {
        name: (old.get(name), value)
        for name, value in new.items()
        # A field the checkpoint does not record (an older turngym) cannot be compared.
        if name not in RESUME_NEUTRAL and name in old and old[name] != value
    }
    return ResumePlan(checkpoint, int(state.get("iteration", 0)), changed)


def field_docs() -> dict[str, str]:
    """Each ``LearnerConfig`` field's documentation, read from its ``#:`` comment lines."""
    from turngym.agents import learner_config

    source = inspect.getsource(learner_config.LearnerConfig)
    docs: dict[str, str] = {}
    pending: list[str] = []
    last = ""  # a field right after another, with no comment between, shares its comment
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
        elif stripped.startswith("def "):
            break
        elif match := re.match(r"    (\w+): ", line):
            if pending:
                last, pending = " ".join(pending), []
            docs[match.group(1)] = last
    return docs


def _default(field: Any) -> Any:
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:
        return field.default_factory()
    return None


def example_config() -> str:
    """A commented YAML config of every ``LearnerConfig`` field at its default value."""
    import textwrap

    import yaml

    from turngym.agents.learner_config import LearnerConfig

    docs = field_docs()
    lines = [
        "# turngym train --config THIS_FILE: every LearnerConfig field, at its default.",
        "# Delete the lines you do not change. `model: tiny:` trains the offline tiny model",
        "# (built once for env_id, cached); put a model folder or Hugging Face hub id there.",
        "",
    ]
    for field in fields(LearnerConfig):
        value = TINY if field.name == "model" else _default(field)
        if isinstance(value, tuple):
            value = list(value)
        for text in textwrap.wrap(docs.get(field.name, ""), 96):
            lines.append(f"# {text}")
        dumped = yaml.safe_dump({field.name: value}, default_flow_style=True, width=1000)
        lines += [dumped.strip().removeprefix("{").removesuffix("}"), ""]
    return "\n".join(lines)
