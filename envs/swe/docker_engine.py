"""The Docker engine side of the SWE docker backend: connecting, labels, background removal,
reaping containers whose owner died, and copying an image's clean code to the host."""

from __future__ import annotations

import functools
import io
import os
import socket
import tarfile
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from turngym.cache import pid_alive
from turngym.error import DependencyNotInstalled, missing_dependency
from turngym.exit_hooks import at_exit

__all__ = [
    "ci_socket",
    "connect",
    "engine_available",
    "reap",
    "wait_removals",
    "image_source",
    "labels",
    "LABEL",
]

LABEL = "turngym.swe"
#: Where docker/ci_setup.sh puts its engine's socket by default.
CI_SOCKET = f"unix://{os.environ.get('TMPDIR', '/tmp')}/turngym-docker/docker.sock"


def ci_socket() -> str:
    """The socket of the engine docker/ci_setup.sh starts: under ``$TURNGYM_DOCKER_STATE`` when
    set (the script's own default rule), else :data:`CI_SOCKET`. Read at call time, so a new
    shell without the ``DOCKER_HOST`` that ``source docker/ci_setup.sh`` exported still finds it."""
    state = os.environ.get("TURNGYM_DOCKER_STATE")
    return f"unix://{state.rstrip('/')}/docker.sock" if state else CI_SOCKET


_CLIENT: Any = None
_REAPED = False
# Removing a container takes ~0.2 s; a background thread does it so the next reset need not wait.
_REMOVER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="turngym-swe-remove")
#: Makes the next grading container of each sandbox ahead of time.
MAKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turngym-swe-grader")
_PENDING: set[Future] = set()
_EXITING = False


def _remove(container: Any) -> None:
    try:
        container.remove(force=True, v=True)
    except Exception:  # noqa: BLE001 - already removed, or the engine is gone (reap() finds it later)
        pass


def _in_background(job: Any, now: bool = False) -> None:
    """Runs ``job`` on the remover thread (:func:`wait_removals` waits for it); here and now
    when ``now``, when the interpreter is exiting or when the executor is shut down."""
    if now or _EXITING:
        job()
        return
    try:
        future = _REMOVER.submit(job)
    except RuntimeError:  # the executor is shut down (interpreter exit)
        job()
        return
    _PENDING.add(future)
    future.add_done_callback(_PENDING.discard)


def _remove_later(container: Any) -> None:
    _in_background(functools.partial(_remove, container))


def wait_removals() -> None:
    """Blocks until every container closed so far is removed."""
    for future in list(_PENDING):
        future.result()


@at_exit
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
        raise missing_dependency("docker", "docker") from error
    tried = []
    for url in ([os.environ["DOCKER_HOST"]] if os.environ.get("DOCKER_HOST") else []) + [
        "unix:///var/run/docker.sock",
        ci_socket(),
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


def reap(client: Any = None, everything: bool = False) -> int:
    """Removes this host's turngym SWE containers whose owner process is gone (every one if ``everything``)."""
    client = client or connect()
    removed = 0
    # sparse: the listing's own data, no inspect per container, which fails (NotFound) for a
    # container another process removes in between (its own close, or its own reap)
    for container in client.containers.list(all=True, sparse=True, filters={"label": LABEL}):
        found = container.attrs.get("Labels") or {}
        owner = found.get("turngym.pid", "")
        if found.get("turngym.host") != socket.gethostname() and not everything:
            continue  # another machine's (or pid namespace's) sandbox: its pid means nothing here
        if everything or not (owner.isdigit() and pid_alive(int(owner))):
            try:
                container.remove(force=True, v=True)
                removed += 1
            except Exception:  # noqa: BLE001 - already gone
                pass
    return removed


@functools.lru_cache(maxsize=8)
def image_source(image: str, path: str = "/opt/src") -> str:
    """A host copy of ``path`` in ``image`` (the clean code, when the host's cache lacks it)."""
    client = connect()
    container = client.containers.create(
        image, ["true"], labels=labels("extract", image), network_mode="none"
    )
    try:
        stream, _ = container.get_archive(path)
        folder = tempfile.mkdtemp(prefix="turngym-image-src-")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            archive.extractall(folder, filter="tar")
    finally:
        _remove(container)
    return os.path.join(folder, os.path.basename(path.rstrip("/")))


def labels(role: str, task: str) -> dict[str, str]:
    return {
        LABEL: "1",
        "turngym.pid": str(os.getpid()),
        "turngym.host": socket.gethostname(),
        "turngym.role": role,
        "turngym.task": task[:200],
    }


def _discard(future: Future) -> None:
    """Removes the container a future makes, now or once made (:func:`wait_removals` waits for it)."""

    def remove() -> None:
        try:
            container = future.result(timeout=120)
        except Exception:  # noqa: BLE001 - never made
            return
        _remove(container)

    _in_background(remove, now=future.done())


def exiting() -> bool:
    """True once the interpreter is exiting (removals then run at once, in this thread)."""
    return _EXITING
