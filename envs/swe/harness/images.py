"""Which image an instance runs in, and how that image is laid out (the image contract).

Naming (:func:`image_for`): a user ``mapping`` (a dict by instance id, a callable, ``"swebench"``,
``"swe-gym"``, ``"turngym"`` (``turngym swe build``'s names) or a template using ``{instance_id}``/``{repo}``; a template's result is lowercased,
as Docker requires) first; then the record's ``image`` or SWE-smith's ``image_name``; then, for an
id of SWE-bench's form (``owner__repo-123``) in one of SWE-bench's repositories, SWE-bench's
published name ``swebench/sweb.eval.x86_64.<id>:latest`` (``__`` -> ``_1776_``, lowercased); else
an error saying how to name one. SWE-Gym's images (``xingyaoww/sweb.eval.x86_64.<id>``, ``__`` ->
``_s_``) need ``mapping="swe-gym"``.

The contract (:class:`ImageContract`, read by the docker backend for the agent's commands and the
grader): the repository is checked out at ``workdir``; ``python`` is the interpreter that has the
repository's dependencies (the grader runs pytest with it); ``path`` is the ``PATH`` every command
gets (so ``python``/``pytest`` in the agent's shell are that environment's); ``activate`` is a
shell line run before each agent command and test command (e.g. conda's activation, which sets
more than ``PATH``); ``env`` holds further variables. The sandbox tool itself runs with
``tool_python`` (a Python >= 3.8 of the image's system, independent of the repository's).

=============  ==================================================================================
family         layout
=============  ==================================================================================
``turngym``    the bundled projects' images (``turngym/swe-*``): ``/testbed``, ``python3`` on
               ``/usr/local/bin:/usr/bin:/bin``, no activation
``turngym-``   ``turngym swe build``'s images (``turngym/sweb.eval.*``): ``/testbed``, a venv at
``venv``       ``/opt/venv`` first on ``PATH`` (``VIRTUAL_ENV`` set), the tool on
               ``/usr/bin/python3`` (the same Debian interpreter the venv was made from)
``image``      any other image: ``/testbed``, ``python3`` and the image's own ``PATH``
``swebench``   SWE-bench's published images (and SWE-Gym's, built by SWE-bench's harness):
               ``/testbed``, conda at ``/opt/miniconda3`` with the repository's env ``testbed``;
               conda's *base* is on the image's ``PATH`` and ``testbed`` is activated only in
               ``.bashrc``, so the contract puts ``/opt/miniconda3/envs/testbed/bin`` first and
               runs ``source /opt/miniconda3/bin/activate testbed``
``swe-gym``    as ``swebench``
``swe-smith``  SWE-smith's ``image_name`` images: the same conda ``testbed`` layout (as SWE-smith
               documents its environment images; not checked against a pulled image here)
=============  ==================================================================================

A task picks its family with the record field ``image_family`` (or ``image_contract``: a dict of
the fields above), else by its image's name (``swebench/``, ``xingyaoww/``, ``swesmith``/``jyangballin/``),
else ``turngym`` for a bundled task and ``image`` for an external one. R2E-Gym's layout is not described (no image could be inspected offline); pass
``image_contract`` for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from turngym.error import InvalidArgumentError

__all__ = [
    "ImageContract",
    "IMAGE_FAMILIES",
    "ImageMapping",
    "SWEBENCH_REPOS",
    "contract_for",
    "image_command",
    "image_for",
    "validate_image_map",
    "swebench_image",
    "swegym_image",
    "turngym_image",
]

#: The repositories of SWE-bench (test and dev splits), whose images follow its naming.
SWEBENCH_REPOS = frozenset(
    """astropy/astropy django/django marshmallow-code/marshmallow matplotlib/matplotlib
    mwaskom/seaborn pallets/flask psf/requests pvlib/pvlib-python pydata/xarray pydicom/pydicom
    pylint-dev/astroid pylint-dev/pylint pytest-dev/pytest pyvista/pyvista
    scikit-learn/scikit-learn sqlfluff/sqlfluff sphinx-doc/sphinx sympy/sympy""".split()
)
_SWEBENCH_ID = re.compile(r"^[\w.-]+__[\w.-]+-\d+$")
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageContract:
    """How an instance image is laid out (see the module docstring).

    Attributes:
        family: the layout's name.
        workdir: where the repository is checked out.
        python: the interpreter holding the repository's dependencies.
        path: ``PATH`` for every command (None keeps the image's own).
        activate: a shell line run before agent and test commands (None: none).
        env: further environment variables.
        tool_python: the interpreter the sandbox tool runs with.
    """

    family: str = "turngym"
    workdir: str = "/testbed"
    python: str = "python3"
    path: str | None = "/usr/local/bin:/usr/bin:/bin"
    activate: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tool_python: str = "python3"

    def shell(self, command: str) -> str:
        """``command`` preceded by the activation line (when there is one)."""
        return f"{self.activate} && {command}" if self.activate else command

    def environment(self) -> dict[str, str]:
        """The variables every command gets (``PATH`` included when set)."""
        return {**({"PATH": self.path} if self.path else {}), **self.env}


_CONDA = ImageContract(
    family="swebench",
    python="/opt/miniconda3/envs/testbed/bin/python",
    path=f"/opt/miniconda3/envs/testbed/bin:/opt/miniconda3/bin:{_SYSTEM_PATH}",
    activate="source /opt/miniconda3/bin/activate testbed",
    env={"CONDA_DEFAULT_ENV": "testbed", "CONDA_PREFIX": "/opt/miniconda3/envs/testbed"},
    tool_python="/usr/bin/python3",
)
#: The known layouts by family name.
IMAGE_FAMILIES: dict[str, ImageContract] = {
    "turngym": ImageContract(),
    "turngym-venv": ImageContract(
        family="turngym-venv",
        python="/opt/venv/bin/python",
        path="/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
        env={"VIRTUAL_ENV": "/opt/venv"},
        tool_python="/usr/bin/python3",
    ),
    "image": ImageContract(family="image", path=None),
    "swebench": _CONDA,
    "swe-gym": replace(_CONDA, family="swe-gym"),
    "swe-smith": replace(_CONDA, family="swe-smith"),
}
_PREFIXES = (
    ("turngym/sweb.eval.", "turngym-venv"),
    ("turngym/swe-", "turngym"),
    ("swebench/", "swebench"),
    ("xingyaoww/", "swe-gym"),
    ("jyangballin/swesmith", "swe-smith"),
    ("swesmith", "swe-smith"),
)


def image_command(record: Mapping[str, Any], image: str, tasks_path: Any = None) -> str:
    """The exact command that builds or pulls a task's missing ``image``."""
    instance_id, records = record.get("instance_id"), tasks_path or "RECORDS.json"
    if image.startswith("turngym/swe-"):
        return "source docker/ci_setup.sh"
    if image.startswith("turngym/sweb.eval."):
        return f"turngym swe build {records} --only {instance_id} --repos CLONES_DIR"
    return f"docker pull {image}` (or `turngym swe pull {records} --only {instance_id}"


def contract_for(record: Mapping[str, Any], image: str | None = None) -> ImageContract:
    """The image contract of a task record (see the module docstring); raises on a bad one."""
    custom = record.get("image_contract")
    family = record.get("image_family")
    if family is None:
        name = str(image or record.get("image") or record.get("image_name") or "").lower()
        default = "turngym" if record.get("project") else "image"
        family = next((fam for prefix, fam in _PREFIXES if name.startswith(prefix)), default)
    if family not in IMAGE_FAMILIES:
        raise InvalidArgumentError(
            f"image_family={family!r} of task {record.get('instance_id')!r} is not known; use one "
            f"of {sorted(IMAGE_FAMILIES)} or give 'image_contract' (a dict of workdir, python, "
            "path, activate, env, tool_python)."
        )
    contract = IMAGE_FAMILIES[family]
    if custom is None:
        return contract
    known = set(ImageContract.__dataclass_fields__) - {"family"}
    if not isinstance(custom, Mapping) or set(custom) - known:
        raise InvalidArgumentError(
            f"image_contract of task {record.get('instance_id')!r} must be a dict with keys from "
            f"{sorted(known)}; got {custom!r}."
        )
    return replace(contract, family=f"{family}+custom", **dict(custom))


def swebench_image(instance_id: str) -> str:
    """SWE-bench's published image of an instance (``__`` -> ``_1776_``, lowercased)."""
    return f"swebench/sweb.eval.x86_64.{instance_id}:latest".replace("__", "_1776_").lower()


def turngym_image(instance_id: str) -> str:
    """The image ``turngym swe build`` makes for an instance (lowercased)."""
    return f"turngym/sweb.eval.{instance_id}:latest".lower()


def swegym_image(instance_id: str) -> str:
    """SWE-Gym's published image of an instance (OpenHands' naming: ``__`` -> ``_s_``, lowercased)."""
    return f"xingyaoww/sweb.eval.x86_64.{instance_id.replace('__', '_s_')}:latest".lower()


_CONVENTIONS: dict[str, Callable[[str], str]] = {
    "swebench": swebench_image,
    "swe-gym": swegym_image,
    "turngym": turngym_image,
}
ImageMapping = Mapping[str, str] | Callable[[Mapping[str, Any]], str | None] | str


def _from_mapping(record: Mapping[str, Any], mapping: ImageMapping) -> str | None:
    instance_id = str(record["instance_id"])
    if isinstance(mapping, str):
        if mapping in _CONVENTIONS:
            return _CONVENTIONS[mapping](instance_id)
        if "{" in mapping:
            try:
                return mapping.format(instance_id=instance_id, repo=record.get("repo", "")).lower()
            except (KeyError, IndexError) as error:
                raise InvalidArgumentError(
                    f"image_map={mapping!r}: a template may use only {{instance_id}} and {{repo}}."
                ) from error
        raise InvalidArgumentError(
            f"image_map={mapping!r} is not valid; use {list(_CONVENTIONS)}, a template such as "
            "'myregistry/{instance_id}:latest', a dict {instance_id: image} or a callable."
        )
    if isinstance(mapping, Mapping):
        value = mapping.get(instance_id)
        return str(value) if value else None
    if callable(mapping):
        value = mapping(record)
        return str(value) if value else None
    raise InvalidArgumentError(
        f"image_map of type {type(mapping).__name__} is not valid; use a dict, a callable, "
        f"{list(_CONVENTIONS)} or a '{{instance_id}}' template."
    )


def validate_image_map(mapping: Any) -> None:
    """Raises when ``mapping`` is not a valid ``image_map`` (see :func:`image_for`)."""
    if mapping is None or isinstance(mapping, Mapping) or callable(mapping):
        return
    _from_mapping({"instance_id": "owner__repo-1", "repo": "owner/repo"}, mapping)


def image_for(record: Mapping[str, Any], mapping: ImageMapping | None = None) -> str:
    """The Docker image of a SWE record (see the module doc); raises when it names none."""
    instance_id = str(record.get("instance_id", "?"))
    if mapping is not None:
        image = _from_mapping(record, mapping)
        if image:
            return image
    for key in ("image", "image_name"):
        if record.get(key):
            return str(record[key])
    if _SWEBENCH_ID.match(instance_id) and record.get("repo") in SWEBENCH_REPOS:
        return swebench_image(instance_id)
    raise InvalidArgumentError(
        f"SWE task {instance_id!r} names no Docker image, and its id/repo ({record.get('repo')!r}) "
        "is not SWE-bench's, whose image name could be derived. Name one: add 'image' (or "
        "SWE-smith's 'image_name') to the record, or pass image_map= to SWEEnv/load_tasks: a dict "
        "{instance_id: image}, a callable(record) -> image, a template such as "
        "'myregistry/sweb.eval.x86_64.{instance_id}:latest', 'swebench' (swebench/sweb.eval."
        "x86_64.<id>, '__' -> '_1776_') or 'swe-gym' (xingyaoww/sweb.eval.x86_64.<id>, '__' -> '_s_')."
    )
