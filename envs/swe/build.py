"""Builds the bundled SWE tasks and the per-project Docker images.

    python -m turngym.envs.swe.build fetch            # pip-download the pinned sdists into the cache
    python -m turngym.envs.swe.build tasks [--per-project N]   # inject bugs, validate, write data/tasks.jsonl
    python -m turngym.envs.swe.build images           # one Docker image per project, on the base image

``tasks`` runs each project's real test suite on the clean code, then on each candidate mutation
(:mod:`turngym.envs.swe.mutate`); a mutation becomes a task only if some tests that passed now fail
and the suite still ends in time. FAIL_TO_PASS = those tests; PASS_TO_PASS = the other passing tests
of the same test files; the gold patch is the inverse diff; the problem statement quotes the first
failure of the test output. The same seed gives the same tasks.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from turngym.cache import file_digest
from turngym.core import stable_hash
from turngym.envs.swe.mutate import Mutation, apply_mutation, find_mutations
from turngym.envs.swe.projects import (
    IMAGE_SOURCE_DIR,
    PROJECTS,
    Project,
    image_name,
    project_source,
)
from turngym.envs.swe.sandbox.swe_tool import apply_diff, hunk_sides, make_diff, parse_diff
from turngym.envs.swe.tasks import DATA_FILE, Task
from turngym.error import DependencyNotInstalled

__all__ = ["build_tasks", "build_images", "main"]

SANDBOX_DIR = Path(__file__).parent / "sandbox"
DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
BASE_IMAGE = "turngym/swe-base:1"
SUITE_TIMEOUT = 60
MAX_FAIL_TO_PASS = 40


def run_suite(
    root: Path, tests: tuple[str, ...] | list[str], timeout: float = SUITE_TIMEOUT
) -> tuple[dict, str]:
    """Runs pytest on ``tests`` in ``root`` (host Python); returns per-test statuses and the output."""
    report = root / ".turngym-report.json"
    env = dict(
        os.environ,
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        TURNGYM_PYTEST_REPORT=str(report),
        PYTHONPATH=str(SANDBOX_DIR),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
    )  # set order in failure messages: same tasks on every build
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--tb=short",
        "-p",
        "no:cacheprovider",
        "-p",
        "turngym_pytest_report",
        *tests,
    ]
    try:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {}, "TIMEOUT"
    statuses = json.loads(report.read_text()) if report.is_file() else {}
    report.unlink(missing_ok=True)
    return statuses, done.stdout


def _first_failure(output: str, limit: int = 1500) -> str:
    blocks = re.split(r"^_{3,} .* _{3,}$", output, flags=re.MULTILINE)
    text = blocks[1] if len(blocks) > 1 else output
    text = re.split(r"^={3,}", text, flags=re.MULTILINE)[0].strip("\n")
    return text if len(text) <= limit else text[:limit] + "\n..."


def _statement(proj: Project, f2p: list[str], output: str) -> str:
    shown = "\n".join(f"- {node}" for node in f2p[:8]) + (
        f"\n- ... ({len(f2p) - 8} more)" if len(f2p) > 8 else ""
    )
    return (
        f"{proj.name} {proj.version}: {len(f2p)} test(s) in the test suite fail.\n\n"
        f"Failing tests:\n{shown}\n\nThe first failure reads:\n```\n{_first_failure(output)}\n```\n"
        "Find the bug in the library code and fix it so that the failing tests pass and every other "
        "test keeps passing. Do not edit the tests."
    )


def _expert_can_apply(gold: str, buggy: str) -> bool:
    """True when every hunk's old text occurs once in the buggy file (the expert's edit calls need it)."""
    return all(
        buggy.count(hunk_sides(hunk)[0]) == 1
        for _, _, _, hunks in parse_diff(gold)
        for _, hunk in hunks
    )


def _try(proj: Project, clean: Path, baseline: dict, rel: str, mutation: Mutation) -> Task | None:
    source = (clean / rel).read_text()
    buggy = apply_mutation(source, mutation)
    if buggy is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        shutil.copytree(clean, work, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        (work / rel).write_text(buggy)
        statuses, output = run_suite(work, proj.tests)
        if not statuses:
            return None
        f2p = sorted(
            n for n, s in baseline.items() if s == "passed" and statuses.get(n) != "passed"
        )
        if not 1 <= len(f2p) <= MAX_FAIL_TO_PASS:
            return None
        files = {n.split("::")[0] for n in f2p}
        p2p = sorted(
            n
            for n, s in baseline.items()
            if s == "passed" and n not in f2p and n.split("::")[0] in files
        )
        setup_patch = make_diff(clean, work)
        gold_dir = Path(tmp) / "gold"
        shutil.copytree(work, gold_dir)
        gold = make_diff(work, clean)
        if not _expert_can_apply(gold, buggy):
            return None
        apply_diff(str(gold_dir), gold)
        if (gold_dir / rel).read_text() != source:
            return None
    tag = stable_hash([rel, mutation.first, setup_patch], length=4)
    instance = f"{proj.name}__{proj.version}-{Path(rel).stem}-{mutation.function}-{mutation.kind}-{mutation.first}{tag}"
    return Task(
        instance_id=instance,
        repo=proj.repo,
        base_commit=proj.sha256[:40],
        problem_statement=_statement(proj, f2p, output),
        patch=gold,
        FAIL_TO_PASS=f2p,
        PASS_TO_PASS=p2p,
        image=image_name(proj),
        setup_patch=setup_patch,
        project=proj.name,
        version=proj.version,
        extra={"bug_kind": mutation.kind, "bug_file": rel, "bug_function": mutation.function},
    )


def build_tasks(
    per_project: int = 35, seed: int = 0, out: Path = DATA_FILE, workers: int = 2
) -> list[Task]:
    """Injects bugs into every project and keeps ``per_project`` validated tasks of each."""
    rng = np.random.default_rng(seed)
    tasks: list[Task] = []
    for proj in PROJECTS.values():
        started = time.perf_counter()
        clean = project_source(proj, download=True)
        baseline, output = run_suite(clean, proj.tests)
        if not baseline:
            raise RuntimeError(f"the clean test suite of {proj.key} did not run:\n{output[-2000:]}")
        candidates = [
            (rel, m) for rel in proj.modules for m in find_mutations((clean / rel).read_text())
        ]
        order = rng.permutation(len(candidates))
        per_function: dict[str, int] = {}
        kept: list[Task] = []
        with ThreadPoolExecutor(workers) as pool:
            batch_size = workers * 2
            queue = [candidates[i] for i in order]
            while queue and len(kept) < per_project:
                batch = []
                while queue and len(batch) < batch_size:
                    rel, mutation = queue.pop(0)
                    if per_function.get(f"{rel}:{mutation.function}", 0) < 2:
                        batch.append((rel, mutation))
                for task in pool.map(
                    _try, *zip(*[(proj, clean, baseline, rel, m) for rel, m in batch], strict=True)
                ):
                    key = f"{task.extra['bug_file']}:{task.extra['bug_function']}" if task else ""
                    if task and per_function.get(key, 0) < 2 and len(kept) < per_project:
                        per_function[key] = per_function.get(key, 0) + 1
                        kept.append(task)
        print(
            f"{proj.key}: {len(kept)} tasks from {len(candidates)} candidates "
            f"in {time.perf_counter() - started:.0f}s",
            flush=True,
        )
        tasks.extend(kept)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(t.to_dict(), sort_keys=True) + "\n" for t in tasks))
    return tasks


def _context(proj: Project, dockerfile: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(dockerfile), arcname="Dockerfile")
        archive.add(
            str(project_source(proj)),
            arcname="src",
            filter=lambda info: None if "__pycache__" in info.name else info,
        )
    return buffer.getvalue()


def build_images(
    client=None, base: str = BASE_IMAGE, docker_dir: Path = DOCKER_DIR
) -> dict[str, float]:
    """Builds ``turngym/swe-<project>:<version>`` on ``base`` unless already built on the same base."""
    import docker.errors

    from turngym.envs.swe.docker_backend import connect

    client = client or connect()
    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound as error:
        raise DependencyNotInstalled(
            f"the base image {base} is not built; run `bash docker/build_base.sh` (or `source docker/ci_setup.sh`)"
        ) from error
    if not (docker_dir / "swe").is_dir():
        raise DependencyNotInstalled(
            f"{docker_dir / 'swe'} (the per-project Dockerfiles) is missing; build the images from a source "
            "checkout of turngym, where docker/ sits next to envs/"
        )
    seconds = {}
    for proj in PROJECTS.values():
        dockerfile = docker_dir / "swe" / proj.name / "Dockerfile"
        stamp = f"{base_id}:{file_digest(dockerfile)[:16]}:{proj.sha256[:16]}"
        try:
            if client.images.get(image_name(proj)).labels.get("turngym.stamp") == stamp:
                continue
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound: build it
            pass
        started = time.perf_counter()
        project_source(proj, download=True)
        client.images.build(
            fileobj=io.BytesIO(_context(proj, dockerfile)),
            custom_context=True,
            tag=image_name(proj),
            buildargs={"BASE": base, "TESTS": " ".join(proj.tests), "SRC": IMAGE_SOURCE_DIR},
            labels={"turngym.stamp": stamp},
            rm=True,
            forcerm=True,
            network_mode="none",
        )
        seconds[proj.key] = time.perf_counter() - started
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m turngym.envs.swe.build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["fetch", "tasks", "images"])
    parser.add_argument("--per-project", type=int, default=35)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    if args.command == "fetch":
        for proj in PROJECTS.values():
            print(proj.key, project_source(proj, download=True))
    elif args.command == "tasks":
        tasks = build_tasks(args.per_project, args.seed, args.out)
        print(f"wrote {len(tasks)} tasks to {args.out}")
    else:
        for key, took in build_images().items():
            print(f"built image for {key} in {took:.1f}s")


if __name__ == "__main__":
    main()
