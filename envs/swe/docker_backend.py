"""The ``docker`` SWE backend: a container per env, made with the ``docker`` SDK.

A reset on the same project reuses the env's container (:meth:`DockerSandbox.renew`: every agent
process killed, the workspace, ``/tmp``, ``/dev/shm`` and ``/dev/mqueue`` emptied, System V IPC
removed, the new bug applied); any other reset, a failure, ``close()``, garbage collection or
interpreter exit removes it.

Containers run with ``network_mode="none"``, memory/swap, pids and CPU limits, all capabilities
dropped but the three the root setup step needs, ``no-new-privileges``, a tini init that reaps
orphans, and size-limited tmpfs mounts for the workspace (``/testbed``) and ``/tmp``. The agent's
commands run as the unprivileged uid 1000, which can write nowhere else. Each command has the
env's timeout (its process group is killed); leftover processes are killed before grading.

``put_archive`` carries the tool files and, for bundled tasks, the repository: the project's
source from the host's turngym cache, staged at ``/opt/workspace-src`` (root-owned) and copied
into the tmpfs workspace at each reset; without that cache the image's own copy at ``/opt/src``
serves. Every container carries the labels ``turngym.swe=1`` and ``turngym.pid=<owner pid>``:
:func:`reap` removes those whose owner died.
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import os
import shlex
import socket
import tarfile
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from turngym.envs.swe.sandbox.swe_tool import encode_request
from turngym.envs.swe.sandbox_base import (
    REPORT_PATH,
    SANDBOX_DIR,
    WORKSPACE,
    Limits,
    Sandbox,
    SandboxError,
)
from turngym.error import DependencyNotInstalled

__all__ = ["DockerSandbox", "connect", "reap", "engine_available", "wait_removals", "LABEL"]

LABEL = "turngym.swe"
TOOL_DIR = "/opt/turngym"
BASE_DIR = "/opt/turngym/base"
AGENT_UID = "1000:1000"
#: Where docker/ci_setup.sh puts its engine's socket by default.
CI_SOCKET = f"unix://{os.environ.get('TMPDIR', '/tmp')}/turngym-docker/docker.sock"
_CLIENT: Any = None
_REAPED = False
# Removing a container takes ~0.2 s; a background thread does it so the next reset need not wait.
_REMOVER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="turngym-swe-remove")
_PENDING: set[Future] = set()
_EXITING = False


def _remove(container: Any) -> None:
    try:
        container.remove(force=True, v=True)
    except Exception:  # noqa: BLE001 - already removed, or the engine is gone (reap() finds it later)
        pass


def wait_removals() -> None:
    """Blocks until every container closed so far is removed."""
    for future in list(_PENDING):
        future.result()


@atexit.register
def _at_exit() -> None:
    global _EXITING
    _EXITING = True
    from turngym.envs.swe.sandbox_base import close_all

    close_all()
    wait_removals()


def connect(timeout: float = 700.0) -> Any:
    """A docker client for ``$DOCKER_HOST`` (or the engine docker/ci_setup.sh started); raises if none answers."""
    global _CLIENT, _REAPED
    if _CLIENT is not None:
        return _CLIENT
    try:
        import docker
    except ImportError as error:
        raise DependencyNotInstalled(
            "the docker SDK is missing: pip install 'docker>=7'"
        ) from error
    tried = []
    for url in ([os.environ["DOCKER_HOST"]] if os.environ.get("DOCKER_HOST") else []) + [
        "unix:///var/run/docker.sock",
        CI_SOCKET,
    ]:
        try:
            client = docker.DockerClient(base_url=url, timeout=timeout)
            client.ping()
        except Exception as error:  # noqa: BLE001 - any failure means this engine does not answer
            tried.append(f"{url}: {type(error).__name__}")
            continue
        _CLIENT = client
        if not _REAPED:
            _REAPED = True
            reap(client)
        return client
    raise DependencyNotInstalled(
        f"no Docker engine answers ({'; '.join(tried)}). Start one and build the images with "
        "`source docker/ci_setup.sh` (it sets DOCKER_HOST), or use backend='local'."
    )


def engine_available() -> str | None:
    """None when an engine answers, else the reason (for pytest skips)."""
    try:
        connect()
    except DependencyNotInstalled as error:
        return str(error)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap(client: Any = None, everything: bool = False) -> int:
    """Removes this host's turngym SWE containers whose owner process is gone (every one if ``everything``)."""
    client = client or connect()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get("turngym.pid", "")
        if container.labels.get("turngym.host") != socket.gethostname() and not everything:
            continue  # another machine's (or pid namespace's) sandbox: its pid means nothing here
        if everything or not (owner.isdigit() and _pid_alive(int(owner))):
            try:
                container.remove(force=True, v=True)
                removed += 1
            except Exception:  # noqa: BLE001 - already gone
                pass
    return removed


#: Where a workspace sent with ``put_archive`` is staged (root-owned; the agent cannot write it).
STAGED_SOURCE = "/opt/workspace-src"


@functools.lru_cache(maxsize=8)
def workspace_archive(folder: str) -> bytes:
    """A tar of the host folder ``folder`` (no ``__pycache__``), unpacking at :data:`STAGED_SOURCE`."""
    buffer = io.BytesIO()
    name = STAGED_SOURCE.rsplit("/", 1)[1]

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name.split("/") or info.name.endswith(".pyc"):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(folder, arcname=name, filter=owned_by_root)
    return buffer.getvalue()


def _tool_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in ("swe_tool.py", "turngym_pytest_report.py"):
            info = archive.gettarinfo(str(SANDBOX_DIR / name), arcname=f"turngym/{name}")
            info.uid = info.gid = 0
            info.mode = 0o644
            with open(SANDBOX_DIR / name, "rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


class DockerSandbox(Sandbox):
    """A container from ``image`` holding the repository at ``/testbed`` (see the module docstring)."""

    backend = "docker"

    def __init__(
        self,
        image: str,
        limits: Limits,
        source: str | None = "/opt/src",
        patch: str = "",
        task: str = "",
        workspace: str | os.PathLike | None = None,
    ) -> None:
        import docker.errors

        self.client = connect()
        self.limits = limits
        self.image = image
        if workspace is not None:  # the repository travels from the host with put_archive
            source = STAGED_SOURCE
        self.source = source
        name = f"turngym-swe-{uuid.uuid4().hex[:12]}"
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound as error:
            raise DependencyNotInstalled(
                f"Docker image {image!r} is not built; build the SWE images with `source docker/ci_setup.sh`."
            ) from error
        # External images (SWE-bench's) hold their repository at /testbed and expect root.
        self.agent_user = AGENT_UID if source else "0:0"
        tmpfs = {"/tmp": f"size={min(64, limits.memory_mb // 8)}m,mode=1777"}
        if source:
            # tmpfs pages count against the memory limit: keep the disk below it so a disk fill
            # ends in ENOSPC, not in the OOM killer.
            tmpfs[WORKSPACE] = f"size={min(limits.disk_mb, limits.memory_mb // 2)}m,exec,mode=0755"
        try:
            self.container = self.client.containers.run(
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
                cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER"],
                security_opt=["no-new-privileges"],
                tmpfs=tmpfs,
                labels={
                    LABEL: "1",
                    "turngym.pid": str(os.getpid()),
                    "turngym.host": socket.gethostname(),
                    "turngym.task": task[:200],
                },
            )
            self.container.put_archive("/opt", _tool_archive())
            if workspace is not None:
                self.container.put_archive("/opt", workspace_archive(os.fspath(workspace)))
            result = self.call(
                {"op": "setup", "src": source, "patch": patch, "owner": 1000 if source else None},
                as_root=True,
            )
            if "error" in result:
                raise SandboxError(f"setting up {task} in {image} failed: {result['error']}")
        except BaseException:  # KeyboardInterrupt included: the half-made container must not leak
            self._remove_by_name(name)
            raise
        self.initial = result
        super().__init__()

    def _remove_by_name(self, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True, v=True)
        except Exception:  # noqa: BLE001 - never created, or the engine is gone (reap() finds it later)
            pass

    def _cleanup_args(self) -> tuple[Any, ...]:
        return (self.container,)

    @staticmethod
    def _cleanup(container: Any) -> None:
        if _EXITING:
            _remove(container)
            return
        try:
            future = _REMOVER.submit(_remove, container)
        except RuntimeError:  # the executor is shut down (interpreter exit)
            _remove(container)
            return
        _PENDING.add(future)
        future.add_done_callback(_PENDING.discard)

    def stop_processes(self) -> None:
        if self.agent_user == "0:0":
            return  # as root, killing everything would take the container's own init down too
        result = self.call({"op": "stop"})
        if "error" in result:
            raise SandboxError(f"the agent's processes could not be stopped: {result['error']}")

    def renew(self, patch: str, task: str = "") -> bool:
        """Reuses the container for the next episode of the same image (~0.1 s instead of a new container).

        Safe because the agent (uid 1000) can write only the workspace, ``/tmp``, ``/dev/shm`` and
        ``/dev/mqueue``: its processes are killed, those folders emptied and System V IPC objects
        removed before the new task is set up.
        """
        if self.closed or self.agent_user == "0:0":
            return False
        try:
            self.stop_processes()
            result = self.call(
                {
                    "op": "setup",
                    "src": self.source,
                    "patch": patch,
                    "owner": 1000,
                    "clean": ["/tmp", "/dev/shm", "/dev/mqueue"],
                },
                as_root=True,
            )
        except SandboxError:
            return False
        if "error" in result:
            return False
        self.initial = result
        return True

    def call(
        self, request: dict[str, Any], *, as_root: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        if self.closed:
            raise SandboxError("the sandbox is closed")
        timeout = float(timeout if timeout is not None else self.limits.command_timeout)
        request = dict(
            request,
            workspace=WORKSPACE,
            base=BASE_DIR,
            timeout=timeout,
            max_output=self.limits.max_output,
            rlimits=self.limits.rlimits(memory=False),
            python="python3",
        )
        # The tool enforces the timeout; `timeout -s KILL` is the backstop if the tool itself hangs.
        command = [
            "timeout",
            "-s",
            "KILL",
            str(int(timeout) + 15),
            "python3",
            f"{TOOL_DIR}/swe_tool.py",
            encode_request(request),
        ]
        if len(command[-1]) > 120_000:
            return {
                "error": "the request is too large (over ~120 KB compressed); split it into smaller edits"
            }
        environment = {
            "PYTHONPATH": TOOL_DIR,
            "PYTEST_ADDOPTS": "-p turngym_pytest_report",
            "TURNGYM_PYTEST_REPORT": REPORT_PATH,
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "HOME": WORKSPACE,
        }
        if (
            self.agent_user != "0:0"
        ):  # our images; external ones keep their own PATH (e.g. a conda env)
            environment["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        try:
            code, (stdout, stderr) = self.container.exec_run(
                command,
                user="0:0" if as_root else self.agent_user,
                workdir=WORKSPACE,
                environment=environment,
                demux=True,
            )
        except Exception as error:  # noqa: BLE001 - docker.errors.*, requests errors: the container is gone
            raise SandboxError(
                f"the container stopped answering: {type(error).__name__}: {error}"
            ) from error
        lines = (stdout or b"").decode("utf-8", "replace").strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            detail = (stderr or b"").decode("utf-8", "replace")[-500:]
            if code == 137:
                return {
                    "error": "the sandbox tool was killed (out of memory or time); the command did not finish"
                }
            raise SandboxError(
                f"the sandbox tool failed (exit {code}): {detail or shlex.join(command[:5])}"
            ) from None
