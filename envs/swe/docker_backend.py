"""The ``docker`` SWE backend: a container per env for the agent, a fresh container per grading.

The agent's container holds the *buggy* tree only: it starts from the task's :class:`StartTree`
(built on the host from the project's clean code + the bug) sent with ``put_archive``, and the
image's clean copy at ``/opt/src`` (mode 0700 in the image) is hidden under an empty tmpfs. A reset
on the same image reuses the container (:meth:`DockerSandbox.renew`: every agent process killed;
the workspace, ``/tmp``, ``/dev/shm``, ``/dev/mqueue`` emptied; System V IPC removed).

Containers run with ``network_mode="none"``, memory/swap, pids and CPU limits, every capability
dropped but the few the root tool needs (CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID, KILL),
``no-new-privileges``, a tini init, and size-limited tmpfs mounts for ``/testbed`` and ``/tmp``.
The tool runs as root with a per-call secret frame in its environment and non-dumpable, and runs
the agent's commands (and does its file edits) as uid 1000, which has no capability and can write
only the workspace and scratch folders; a detached agent process can neither reach the tool's
stdout nor read the frame.

Grading (:meth:`DockerSandbox.evaluate`) takes the agent's diff from the root tool (after every
agent process is killed; files read with the agent's uid, no symlink followed) and runs it in a
fresh container from the same image (made ahead of time by a background pool, then removed) over
the host's pristine starting tree. Every container carries the labels
``turngym.swe=1``, ``turngym.pid=<owner pid>`` and ``turngym.host``: :func:`reap` removes those
whose owner died (run at the first connection of each process and by ``turngym swe reap``).
"""

from __future__ import annotations

import functools
import io
import tarfile
import uuid
from concurrent.futures import Future
from typing import Any

from turngym.envs.swe.docker_engine import (
    LABEL,
    MAKER,
    _discard,
    _remove,
    _remove_later,
    connect,
    engine_available,
    exiting,
    image_source,
    labels,
    reap,
    wait_removals,
)
from turngym.envs.swe.harness.images import IMAGE_FAMILIES, ImageContract
from turngym.envs.swe.sandbox_base import (
    SANDBOX_DIR,
    TOOL_FILES,
    WORKSPACE,
    Limits,
    Sandbox,
    SandboxError,
    StartTree,
    new_frame,
    tool_answer,
    tool_payload,
)
from turngym.error import DependencyNotInstalled

__all__ = [
    "DockerSandbox",
    "connect",
    "reap",
    "engine_available",
    "wait_removals",
    "image_source",
    "LABEL",
]

TOOL_DIR = "/opt/turngym"
BASE_DIR = "/opt/turngym/base"
STAGE = "/opt/turngym-stage"
INPUTS = "/opt/turngym-in"
AGENT_UID = 1000
CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"]


@functools.lru_cache(maxsize=1)
def _tool_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in TOOL_FILES:
            info = archive.gettarinfo(str(SANDBOX_DIR / name), arcname=f"turngym/{name}")
            info.uid = info.gid = 0
            info.mode = 0o644
            with open(SANDBOX_DIR / name, "rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def _start(client: Any, image: str, limits: Limits, bundled: bool, role: str, task: str) -> Any:
    """A running container with the tool in it (removed again if anything fails)."""
    tmpfs = {"/tmp": f"size={min(64, limits.memory_mb // 8)}m,mode=1777"}
    if bundled:
        # tmpfs pages count against the memory limit: keep the disk below it so a disk fill
        # ends in ENOSPC, not in the OOM killer. nr_inodes bounds a flood of empty files (each
        # later step walks the workspace). The image's clean code goes under an empty tmpfs.
        size = min(limits.disk_mb, limits.memory_mb // 2)
        tmpfs[WORKSPACE] = f"size={size}m,nr_inodes={limits.inodes},exec,mode=0755"
        tmpfs["/opt/src"] = "size=64k,mode=0700"
    name = f"turngym-swe-{role}-{uuid.uuid4().hex[:12]}"
    try:
        container = client.containers.run(
            image,
            ["sleep", "infinity"],
            name=name,
            detach=True,
            init=True,
            network_mode="none",
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            pids_limit=limits.pids,
            nano_cpus=int(limits.cpus * 1e9),
            cap_drop=["ALL"],
            cap_add=CAPS,
            security_opt=["no-new-privileges"],
            tmpfs=tmpfs,
            labels=labels(role, task),
        )
        container.put_archive("/opt", _tool_archive())
        return container
    except BaseException:  # KeyboardInterrupt included: the half-made container must not leak
        try:
            client.containers.get(name).remove(force=True, v=True)
        except Exception:  # noqa: BLE001 - never created, or the engine is gone (reap() finds it later)
            pass
        raise


def _tar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _exec(
    container: Any,
    request: dict[str, Any],
    timeout: float,
    env: dict,
    tool_python: str = "python3",
    workdir: str = WORKSPACE,
) -> dict:
    """Runs the tool as root with a fresh frame; the answer is the framed JSON line, nothing else."""
    frame = new_frame()
    payload, refused = tool_payload(request)
    if payload is None:
        return refused
    # The tool enforces the timeout; `timeout -s KILL` is the backstop if the tool itself hangs.
    command = [
        "timeout",
        "-s",
        "KILL",
        str(int(timeout) + 15),
        tool_python,
        f"{TOOL_DIR}/swe_tool.py",
        payload,
    ]
    try:
        code, (stdout, stderr) = container.exec_run(
            command,
            user="0:0",
            workdir=workdir,
            environment={**env, "TURNGYM_FRAME": frame},
            demux=True,
        )
    except Exception as error:  # noqa: BLE001 - docker.errors.*, requests errors: the container is gone
        raise SandboxError(
            f"the container stopped answering: {type(error).__name__}: {error}"
        ) from error
    result = tool_answer(stdout or b"", frame, killed=code == 137)
    if result is not None:
        return result
    detail = (stderr or b"").decode("utf-8", "replace")[-500:]
    raise SandboxError(f"the sandbox tool failed (exit {code}): {detail or 'no answer'}")


class DockerSandbox(Sandbox):
    """A container from ``image`` holding the repository at ``/testbed`` (see the module docstring).

    Args:
        image: the task's image.
        limits: resource limits.
        start: the starting tree (bundled tasks); None for external images, whose ``/testbed``
            is the repository and whose commands run as root (SWE-bench's convention).
        task: the instance id (a label).
        contract: the image's layout (:class:`~.harness.ImageContract`: interpreter, ``PATH``,
            activation, variables); None: the bundled projects' layout.
        get_image: the command that builds or pulls ``image``, named when it is missing.
    """

    backend = "docker"

    def __init__(
        self,
        image: str,
        limits: Limits,
        start: StartTree | None = None,
        task: str = "",
        contract: ImageContract | None = None,
        get_image: str = "source docker/ci_setup.sh",
    ) -> None:
        import docker.errors

        self.client = connect()
        self.limits, self.image, self.start = limits, image, start
        self.contract = contract or IMAGE_FAMILIES["turngym"]
        # ours are at WORKSPACE (a tmpfs); an external image's repository is where its contract says
        self.workdir = WORKSPACE if start is not None else self.contract.workdir
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound as error:
            raise DependencyNotInstalled(
                f"Docker image {image!r} (task {task}) is not here; get it with `{get_image}`."
            ) from error
        self.agent_uid = AGENT_UID if start is not None else None
        self.container = _start(self.client, image, limits, start is not None, "agent", task)
        try:
            result = self._setup(start, clean=False)
            if "error" in result:
                raise SandboxError(f"setting up {task} in {image} failed: {result['error']}")
        except BaseException:
            _remove(self.container)
            raise
        self.initial = result
        super().__init__()

    def _grader(self, task: str) -> Any:
        """A fresh grading container: the one made ahead (then the next is begun), else a new one."""
        container = None
        if self._next_grader:
            try:
                container = self._next_grader.pop().result()
            except Exception:  # noqa: BLE001 - making it failed: make one now
                container = None
        if container is None:
            container = _start(
                self.client, self.image, self.limits, self.start is not None, "grader", task
            )
        if not exiting():
            self._next_grader.append(
                MAKER.submit(
                    _start,
                    self.client,
                    self.image,
                    self.limits,
                    self.start is not None,
                    "grader",
                    "next",
                )
            )
        return container

    def _setup(self, start: StartTree | None, clean: bool) -> dict[str, Any]:
        request: dict[str, Any] = {"op": "setup", "owner": self.agent_uid}
        if start is not None:
            self.container.put_archive("/opt", start.archive(STAGE.rsplit("/", 1)[1], AGENT_UID))
            request["stage"] = STAGE
        if clean:
            request["clean"] = ["/tmp", "/dev/shm", "/dev/mqueue"]
        return self.call(request)

    def _cleanup_args(self) -> tuple[Any, ...]:
        self._next_grader = []
        return (self.container, self._next_grader)

    @staticmethod
    def _cleanup(container: Any, next_grader: list[Future]) -> None:
        _remove_later(container)
        for future in next_grader:
            _discard(future)
        next_grader.clear()

    def _env(self) -> dict[str, str]:
        """Every command's variables: ours, then the image contract's (its ``PATH`` above all)."""
        return {
            "HOME": self.workdir,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.contract.environment(),
        }

    def call(
        self, request: dict[str, Any], *, as_root: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        if self.closed:
            raise SandboxError("the sandbox is closed")
        timeout = float(timeout if timeout is not None else self.limits.command_timeout)
        request = dict(
            request,
            workspace=self.workdir,
            base=BASE_DIR,
            timeout=timeout,
            max_output=self.limits.max_output,
            rlimits=self.limits.rlimits(memory=False),
            python=self.contract.python,
            agent_uid=None if as_root else self.agent_uid,
        )
        if request.get("op") == "run" and self.contract.activate:
            request["command"] = self.contract.shell(request["command"])
        return _exec(
            self.container, request, timeout, self._env(), self.contract.tool_python, self.workdir
        )

    def stop_processes(self) -> None:
        if self.agent_uid is None:
            return  # as root, killing everything would take the container's own init down too
        result = self.call({"op": "stop"})
        if "error" in result:
            raise SandboxError(f"the agent's processes could not be stopped: {result['error']}")

    def renew(self, start: StartTree | None, task: str = "") -> bool:
        """Reuses the container for the next episode of the same image (~0.1 s instead of a new container).

        Safe because the agent (uid 1000) can write only the workspace, ``/tmp``, ``/dev/shm`` and
        ``/dev/mqueue``: its processes are killed, those folders emptied and System V IPC objects
        removed before the new task is set up.
        """
        if self.closed or self.agent_uid is None or start is None:
            return False
        try:
            self.stop_processes()
            result = self._setup(start, clean=True)
        except SandboxError:
            return False
        if "error" in result:
            return False
        self.start, self.initial = start, result
        return True

    def agent_diff(self, stop: bool = False) -> str:
        """The workspace's diff against the starting snapshot, made by the root tool reading as the
        agent (docker cannot copy out of a tmpfs); with ``stop``, after killing every agent process
        (one exec for both)."""
        op = "stop" if stop and self.agent_uid is not None else "diff"
        result = self.call({"op": op, "with_diff": True}, timeout=60)
        if "error" in result:
            raise SandboxError(f"the workspace diff failed: {result['error']}")
        return result["diff"]

    def evaluate(self, diff: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        bundled = self.start is not None
        grader = self._grader(request.get("task", ""))
        try:
            inputs = {
                f"{INPUTS[1:]}/agent.diff": diff.encode(),
                f"{INPUTS[1:]}/test.patch": request.pop("test_patch", "").encode(),
            }
            grader.put_archive("/", _tar(inputs))
            if bundled:  # put_archive cannot write into a tmpfs: the tool copies the stage in
                grader.put_archive("/opt", self.start.archive(STAGE.rsplit("/", 1)[1], AGENT_UID))
            request = dict(
                request,
                op="grade",
                workspace=self.workdir,
                stage=STAGE if bundled else None,
                diff_path=f"{INPUTS}/agent.diff",
                test_patch_path=f"{INPUTS}/test.patch",
                timeout=timeout,
                rlimits=self.limits.rlimits(memory=False),
                python=self.contract.python,
                agent_uid=AGENT_UID if bundled else None,
            )
            return _exec(
                grader, request, timeout, self._env(), self.contract.tool_python, self.workdir
            )
        finally:
            _remove_later(grader)
