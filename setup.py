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
    found = []
    for package, folder in MAPPING.items():
        base = ROOT / folder
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            if any(part.startswith((".", "_")) or part == "tests" for part in rel.parts):
                continue
            found.append(".".join([package, *rel.parts]) if rel.parts else package)
    return found


setup(packages=_packages(), package_dir=MAPPING)
