"""The real PyPI projects behind the bundled SWE tasks, pinned by version and sdist SHA-256.

Their code is not shipped with turngym: :func:`project_source` downloads the sdist with ``pip``
(at build / CI-setup time, ``python -m turngym.envs.swe.build fetch``), checks its hash and
unpacks it into the turngym cache. At run time nothing is downloaded: a missing source raises an
error that names the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from turngym.cache import cache_root, cached_dir, file_digest
from turngym.error import DependencyNotInstalled, InvalidArgumentError

__all__ = ["Project", "PROJECTS", "project", "project_source", "image_name", "FETCH_COMMAND"]

FETCH_COMMAND = "python -m turngym.envs.swe.build fetch"
#: Where each project's code lives inside its Docker image (copied to the workspace at reset).
IMAGE_SOURCE_DIR = "/opt/src"


@dataclass(frozen=True)
class Project:
    """One pinned PyPI project with a pytest suite that runs in seconds with only pytest."""

    name: str
    version: str
    sha256: str  # of the sdist
    modules: tuple[str, ...]  # library files bugs are injected into (relative to the sdist root)
    tests: tuple[str, ...]  # test paths given to pytest (relative to the sdist root)
    repo: str  # upstream "owner/name", SWE-bench's ``repo`` field

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


PROJECTS: dict[str, Project] = {
    p.name: p
    for p in (
        Project(
            "toolz",
            "1.0.0",
            "2c86e3d9a04798ac556793bced838816296a2f085017664e4995cb40a1047a02",
            ("toolz/itertoolz.py", "toolz/functoolz.py", "toolz/dicttoolz.py", "toolz/recipes.py"),
            ("toolz/tests",),
            "pytoolz/toolz",
        ),
        Project(
            "parse",
            "1.20.2",
            "b41d604d16503c79d81af5165155c0b20f6c8d6c559efa66b4b695c3e5a0a0ce",
            ("parse.py",),
            ("tests",),
            "r1chardj0n3s/parse",
        ),
        Project(
            "inflection",
            "0.5.1",
            "1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417",
            ("inflection/__init__.py",),
            ("test_inflection.py",),
            "jpvanhal/inflection",
        ),
        Project(
            "more-itertools",
            "10.5.0",
            "5482bfef7849c25dc3c6dd53a6173ae4795da2a41a80faea6700d9f5846c5da6",
            ("more_itertools/more.py", "more_itertools/recipes.py"),
            ("tests",),
            "more-itertools/more-itertools",
        ),
    )
}


def project(name: str) -> Project:
    """The project called ``name``; raises with the valid names otherwise."""
    if name not in PROJECTS:
        raise InvalidArgumentError(f"unknown SWE project {name!r}; valid: {sorted(PROJECTS)}")
    return PROJECTS[name]


def image_name(proj: Project) -> str:
    """The local Docker image holding ``proj``'s code and environment (built by docker/ci_setup.sh)."""
    return f"turngym/swe-{proj.name}:{proj.version}"


def _download(proj: Project, folder: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{proj.name}=={proj.version}",
            "-d",
            tmp,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        archives = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise DependencyNotInstalled(
                f"pip could not download the sdist of {proj.name}=={proj.version}: "
                f"{done.stderr.strip()[-500:]}; check access to PyPI and retry {FETCH_COMMAND}"
            )
        digest = file_digest(archives[0])
        if digest != proj.sha256:
            raise DependencyNotInstalled(
                f"{archives[0].name} has SHA-256 {digest}, expected {proj.sha256}"
            )
        with tarfile.open(archives[0]) as archive:
            archive.extractall(tmp, filter="data")
        root = Path(tmp) / proj.key
        if not root.is_dir():
            root = next(p for p in Path(tmp).iterdir() if p.is_dir())
        for item in root.iterdir():
            os.rename(item, folder / item.name)


def project_source(proj: Project, download: bool = False) -> Path:
    """The unpacked sdist of ``proj`` in the cache; downloads it only when ``download`` is True."""
    marker = cache_root() / "swe-projects" / proj.key
    if not download and not marker.is_dir():
        raise DependencyNotInstalled(
            f"the source of {proj.key} is not in the turngym cache ({marker}); fetch it once with "
            f"`{FETCH_COMMAND}` (needs PyPI), or use backend='docker' with images built by docker/ci_setup.sh."
        )
    return cached_dir("swe-projects", proj.key, lambda tmp: _download(proj, tmp))
