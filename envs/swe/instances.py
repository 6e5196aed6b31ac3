"""``turngym swe build``: an offline-capable, cached Docker image for each instance of a record file.

    turngym swe build RECORDS [--repos MIRRORS] [--specs FILE] [--only ID ...] [--jobs N]

For each SWE-bench / SWE-Gym / SWE-smith record:

1. **Spec** (:func:`spec_for`): the Python version, install command and extra packages of its
   ``repo``/``version``, from the user's ``--specs`` file (JSON or YAML ``{repo: {version: spec}}``,
   the field names of SWE-bench's specs: ``python``, ``install``, ``pip_packages``, ``packages``
   (``requirements.txt`` or package names), ``env`` (variables for the install)); else from the
   installed ``swebench`` package's ``MAP_REPO_VERSION_TO_SPECS`` (swebench 4.x ships it; 5.x
   moved its specs into per-dataset task repositories, so pass ``--specs`` there). No spec table
   is copied into turngym.
2. **Interpreter**: a Debian root filesystem (``debootstrap --variant=minbase``) whose ``python3``
   is the spec's version (:data:`SUITES`; a version Debian never shipped takes the next one it
   did, and the summary says so), cached as a tarball and imported as ``turngym/swe-rootfs:<suite>``.
3. **Repository** at ``base_commit``: ``git archive`` from the user's clone or mirror under
   ``--repos`` (``owner__name``, ``owner+name``, ``owner/name`` or ``name``, bare or not), else,
   with ``--repo-url`` (e.g. ``https://github.com/{repo}.git``), a mirror cloned into the cache.
4. **Wheels**, fetched once into a wheelhouse per Python version **by the target interpreter**
   (a container of that root filesystem running pip with host networking and the host's pip CA
   bundle), so environment markers resolve for that Python: the repository's dependencies, its
   ``[build-system] requires``, the spec's packages, ``pytest`` when the spec names none.
5. **Image** ``turngym/sweb.eval.<instance id>:latest`` (lowercased), built with no network: a
   venv at ``/opt/venv`` (``pip --no-index`` from the wheelhouse, no build isolation), the
   repository at ``/testbed``; labelled with a stamp of its inputs, so a rebuild with the same
   inputs is skipped (reuse). Its layout is the ``turngym`` image contract
   (:mod:`.harness.images`); run the records with ``image_map="turngym"``.

Builds run ``--jobs`` at a time with a progress bar; the summary table lists each instance as
built / reused / failed with the reason and the time and size. ``turngym swe pull RECORDS`` pulls
the published images instead (SWE-bench's naming, or ``--image-map``) where a registry answers.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import tarfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turngym.cache import cache_root
from turngym.core import stable_hash
from turngym.envs.swe.harness import turngym_image
from turngym.envs.swe.instance_image import (
    DOCKERFILE,
    SUITES,
    VENV,
    build_context,
    build_image,
    docker_cli,
    ensure_rootfs,
    fetch_wheels,
    install_command,
    wanted,
)
from turngym.error import DependencyNotInstalled, InvalidArgumentError

__all__ = [
    "InstanceSpec",
    "BuildResult",
    "SUITES",
    "spec_for",
    "read_specs",
    "find_repository",
    "clone_repository",
    "build_instances",
    "pull_instances",
    "summary_table",
]

BUILDER_VERSION = "1"


@dataclass(frozen=True)
class InstanceSpec:
    """How an instance's environment is installed (SWE-bench's spec fields we act on)."""

    python: str
    install: str = "python -m pip install -e ."
    pip_packages: tuple[str, ...] = ()
    packages: str = ""
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def suite(self) -> str:
        """The Debian suite whose python3 is this version, or the next newer one."""
        wanted = tuple(int(x) for x in self.python.split(".")[:2])
        for version, suite in sorted(
            SUITES.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))
        ):
            if tuple(map(int, version.split("."))) >= wanted:
                return suite
        return SUITES["3.13"]

    @property
    def real_python(self) -> str:
        """The Python version the image really gets."""
        return {suite: version for version, suite in SUITES.items()}[self.suite]


@dataclass
class BuildResult:
    """One instance's outcome in a build: ``status`` is built, reused, pulled or failed."""

    instance_id: str
    status: str
    image: str = ""
    seconds: float = 0.0
    size_mb: float = 0.0
    python: str = ""
    reason: str = ""


def read_specs(path: str | Path | None) -> dict[str, dict[str, dict[str, Any]]]:
    """A user's spec file (JSON or YAML ``{repo: {version: spec}}``); empty for None."""
    if path is None:
        return {}
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(
            f"--specs {path} not found; give a JSON/YAML file {{repo: {{version: spec}}}}."
        )
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml
        except ImportError as error:
            raise DependencyNotInstalled(
                f"{path} is not JSON; reading YAML needs pyyaml: pip install pyyaml"
            ) from error
        data = yaml.safe_load(text)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidArgumentError(
            f"--specs {path} must map repo -> version -> spec, e.g. {{'o/r': {{'1.0': {{'python': '3.9'}}}}}}."
        )
    return data


def _swebench_specs() -> Mapping[str, Any]:
    try:
        from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS
    except Exception:  # noqa: BLE001 - absent, or 5.x which keeps specs in task repositories
        return {}
    return MAP_REPO_VERSION_TO_SPECS


def spec_for(record: Mapping[str, Any], specs: Mapping[str, Any] | None = None) -> InstanceSpec:
    """The install spec of a record: the user's specs first, then the ``swebench`` package's."""
    repo, version = str(record.get("repo", "")), str(record.get("version", ""))
    for source in (specs or {}, _swebench_specs()):
        raw = (source.get(repo) or {}).get(version)
        if raw is not None:
            break
    else:
        raise InvalidArgumentError(
            f"no install spec for {repo} version {version!r} ({record.get('instance_id')}): pass "
            "--specs FILE with {repo: {version: {python, install, pip_packages, packages}}} (the "
            "installed swebench has no spec table for it)."
        )
    pip_packages = raw.get("pip_packages") or []
    if isinstance(pip_packages, str):
        pip_packages = pip_packages.split()
    packages = raw.get("packages") or ""
    if isinstance(packages, list):
        packages = " ".join(packages)
    return InstanceSpec(
        python=str(raw.get("python", "3.11")),
        install=str(raw.get("install", "python -m pip install -e .")),
        pip_packages=tuple(str(p) for p in pip_packages),
        packages=str(packages),
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
    )


def find_repository(repos: Path, repo: str) -> Path:
    """The git directory (or work tree) of ``owner/name`` under ``repos``."""
    owner, _, name = repo.partition("/")
    for candidate in (
        f"{owner}__{name}",
        f"{owner}+{name}",
        f"{owner}/{name}",
        name,
        f"{name}.git",
    ):
        path = repos / candidate
        if (path / "repo").is_dir() and not (path / "HEAD").exists():
            path = path / "repo"  # the layout of the fetch tool's mirrors: owner+name/repo
        if path.is_dir():
            return path
    raise InvalidArgumentError(
        f"no clone of {repo} under {repos}; clone it there as {owner}__{name} "
        f"(git clone --mirror https://github.com/{repo} {repos / (owner + '__' + name)})."
    )


def _git_archive(repository: Path, commit: str) -> bytes:
    process = subprocess.run(
        ["git", f"--git-dir={_git_dir(repository)}", "archive", "--format=tar", commit],
        capture_output=True,
        check=False,
    )
    if process.returncode != 0:
        raise InvalidArgumentError(
            f"git archive {commit} in {repository} failed: {process.stderr.decode()[-300:]}"
            " (fetch that commit into the clone)"
        )
    return process.stdout


_CLONING = threading.Lock()  # one clone or fetch at a time (parallel builds share repositories)


def clone_repository(repo: str, url: str, commit: str) -> Path:
    """A mirror of ``repo`` in the cache, cloned from ``url`` (``{repo}`` is filled in) or fetched
    again when it lacks ``commit``; for machines where the network allows."""
    owner, _, name = repo.partition("/")
    mirror = cache_root() / "swe-repos" / f"{owner}__{name}"
    source = url.format(repo=repo)
    with _CLONING:
        if not mirror.is_dir():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            step = ["git", "clone", "--mirror", "--quiet", source, str(mirror)]
        elif subprocess.run(["git", f"--git-dir={mirror}", "cat-file", "-e", f"{commit}^{{commit}}"],
                            capture_output=True, check=False).returncode != 0:  # fmt: skip
            step = ["git", f"--git-dir={mirror}", "fetch", "--quiet", "origin"]
        else:
            return mirror
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InvalidArgumentError(
                f"{shlex.join(step)} failed ({done.stderr.strip()[-300:]}); clone {repo} into a "
                "folder and pass it with --repos"
            )
    return mirror


def _git_dir(repository: Path) -> Path:
    return repository / ".git" if (repository / ".git").exists() else repository


def build_one(
    record: Mapping[str, Any], repos: Path | None, specs: Mapping[str, Any], rebuild: bool = False,
    repo_url: str | None = None,
) -> BuildResult:  # fmt: skip
    """Builds (or reuses) one instance's image; never raises (failures are in the result)."""
    instance_id = str(record.get("instance_id"))
    image = turngym_image(instance_id)
    started = time.perf_counter()
    result = BuildResult(instance_id, "failed", image)
    try:
        spec = spec_for(record, specs)
        result.python = spec.real_python + (
            "" if spec.python == spec.real_python else f" (spec {spec.python})"
        )
        stamp = stable_hash(
            [BUILDER_VERSION, repr(spec), record.get("repo"), record.get("base_commit")], length=16
        )
        inspect = docker_cli(
            "image", "inspect", "-f", '{{ index .Config.Labels "turngym.stamp" }}', image
        )
        if not rebuild and inspect.returncode == 0 and inspect.stdout.strip() == stamp:
            result.status = "reused"
        else:
            commit, repo = str(record["base_commit"]), str(record.get("repo"))
            repository = None
            if repos is not None:
                try:
                    repository = find_repository(repos, repo)
                except InvalidArgumentError:
                    if not repo_url:
                        raise
            if repository is None:
                if not repo_url:
                    raise InvalidArgumentError(
                        f"{instance_id}: pass --repos DIR holding a clone of {repo}, or "
                        "--repo-url 'https://github.com/{repo}.git' where the network allows"
                    )
                repository = clone_repository(repo, repo_url, commit)
            src = cache_root() / "swe-instances" / f"{instance_id.lower()}-{commit[:12]}" / "src"
            if not (src.parent / "src.done").is_file():
                src.mkdir(parents=True, exist_ok=True)
                data = _git_archive(repository, str(record["base_commit"]))
                with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                    archive.extractall(src, filter="tar")
                (src.parent / "src.done").write_text(str(record["base_commit"]))
            env = {
                "SETUPTOOLS_SCM_PRETEND_VERSION": f"{record.get('version') or '0'}.0",
                **spec.env,
            }
            rootfs = ensure_rootfs(spec.suite)
            wheels = fetch_wheels(spec, rootfs, src, env)
            pip = next(name for name in wheels if name.startswith("pip-"))
            build, packages, requirements = wanted(spec, src)
            extras = [*packages, *(["-r", f"/testbed/{requirements}"] if requirements else [])]
            dockerfile = DOCKERFILE.format(
                rootfs=rootfs, venv=VENV, pip=pip, install=install_command(spec),
                build=shlex.join(build), extras=shlex.join(extras),
                env=" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            )  # fmt: skip
            house = cache_root() / "swe-wheels" / f"py{spec.real_python}"
            build_image(build_context(dockerfile, src, house, wheels), image, stamp)
            result.status = "built"
        size = docker_cli("image", "inspect", "-f", "{{ .Size }}", image).stdout.strip()
        result.size_mb = int(size or 0) / 1e6
    except Exception as error:  # noqa: BLE001 - one instance's failure is a row of the summary
        result.reason = f"{type(error).__name__}: {str(error)[-400:]}"
    result.seconds = time.perf_counter() - started
    return result


def build_instances(
    records: list[Mapping[str, Any]], repos: Path | None = None, specs: Mapping[str, Any] | None = None,
    jobs: int = 2, rebuild: bool = False, progress: bool = True, repo_url: str | None = None,
) -> list[BuildResult]:  # fmt: skip
    """Builds every record's image, ``jobs`` at a time (see the module docstring)."""
    from tqdm import tqdm

    results = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [
            pool.submit(build_one, r, repos, specs or {}, rebuild, repo_url) for r in records
        ]
        bar = tqdm(
            as_completed(futures), total=len(futures), desc="swe build", disable=not progress
        )
        for future in bar:
            results.append(future.result())
            bar.set_postfix_str(f"{results[-1].instance_id}: {results[-1].status}")
    order = {str(r.get("instance_id")): i for i, r in enumerate(records)}
    return sorted(results, key=lambda r: order.get(r.instance_id, 0))


def pull_instances(tasks: list[Any], client: Any = None) -> list[BuildResult]:
    """Pulls each task's published image (its ``image``: SWE-bench's naming or ``image_map``)."""
    results = []
    for task in tasks:
        started = time.perf_counter()
        result = BuildResult(task.instance_id, "failed", task.image or "")
        try:
            if not task.image:
                raise InvalidArgumentError("no image name; pass --image-map")
            if client is None:
                from turngym.envs.swe.docker_backend import connect

                client = connect()
            repository, _, tag = (
                task.image.rpartition(":")
                if ":" in task.image.split("/")[-1]
                else (task.image, "", "latest")
            )
            pulled = client.images.pull(repository, tag=tag or "latest")
            result.status, result.size_mb = "pulled", pulled.attrs.get("Size", 0) / 1e6
        except Exception as error:  # noqa: BLE001 - a row of the summary
            result.reason = f"{type(error).__name__}: {str(error)[-300:]}"
        result.seconds = time.perf_counter() - started
        results.append(result)
    return results


def summary_table(results: list[BuildResult]) -> str:
    """A plain-text table: instance, status, Python, seconds, size, reason."""
    rows = [("instance", "status", "python", "seconds", "size MB", "reason")]
    rows += [
        (r.instance_id, r.status, r.python, f"{r.seconds:.0f}", f"{r.size_mb:.0f}", r.reason)
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    )
