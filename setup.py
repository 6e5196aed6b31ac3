"""Maps the repo-root folders envs/, agents/ and credit/ onto turngym.envs/.agents/.credit.

Metadata lives in pyproject.toml; this file only computes the package list so that a new env
family folder (with an ``__init__.py``) is packaged without editing any list by hand.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
MAPPING = {
    "turngym": "turngym",
    "turngym.envs": "envs",
    "turngym.agents": "agents",
    "turngym.credit": "credit",
}


def _packages() -> list[str]:
    """Every package folder, and every data folder inside one (e.g. ``turngym.envs.swe.data``).

    A data folder without ``__init__.py`` is still importable as a namespace package, so setuptools
    wants it named in ``packages`` for its package-data files to ship.
    """
    found = []
    for package, folder in MAPPING.items():
        base = ROOT / folder
        for directory in sorted([base, *(p for p in base.rglob("*") if p.is_dir())]):
            rel = directory.relative_to(base)
            if any(part.startswith((".", "_")) or part == "tests" for part in rel.parts):
                continue
            if not (directory / "__init__.py").is_file() and not any(
                child.is_file() for child in directory.iterdir()
            ):
                continue
            if rel.parts and not (directory.parent / "__init__.py").is_file():
                continue  # only folders directly inside a package
            found.append(".".join([package, *rel.parts]) if rel.parts else package)
    return found


setup(packages=_packages(), package_dir=MAPPING)
