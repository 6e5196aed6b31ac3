"""The pieces of ``turngym swe build`` that make one image: a Debian root filesystem per Python
(:func:`ensure_rootfs`), the wheels an instance needs fetched by that Python (:func:`fetch_wheels`),
and the offline multi-stage build (:data:`DOCKERFILE`, :func:`build_image`); see
:mod:`turngym.envs.swe.instances` for the whole command."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

from turngym.cache import cache_root
from turngym.error import DependencyNotInstalled

__all__ = [
    "SUITES",
    "DOCKERFILE",
    "VENV",
    "docker_cli",
    "ensure_rootfs",
    "wanted",
    "fetch_wheels",
    "install_command",
    "build_context",
    "build_image",
]

#: Debian suites by the ``python3`` they ship (minbase + python3 is all an image needs).
SUITES = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}
#: Debian packages a suite needs beside python3 (bullseye's pip imports distutils, packaged apart).
SUITE_EXTRAS = {"bullseye": ["python3-distutils"]}
VENV = "/opt/venv"


def docker_cli(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


_ROOTFS = threading.Lock()  # one debootstrap at a time: parallel builds share a suite's root


def ensure_rootfs(suite: str) -> str:
    with _ROOTFS:
        return _ensure_rootfs(suite)


def _ensure_rootfs(suite: str) -> str:
    """``turngym/swe-rootfs:<suite>[-extras]`` (debootstrap minbase + python3 and what pip needs
    on that suite, :data:`SUITE_EXTRAS`), cached as a tarball."""
    extras = SUITE_EXTRAS.get(suite, [])
    image = f"turngym/swe-rootfs:{'-'.join([suite, *extras])}"
    if docker_cli("image", "inspect", image).returncode == 0:
        return image
    cache = cache_root() / "swe-docker"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-{'-'.join([suite, 'python3', *extras])}.tar"
    if not tarball.is_file():
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        work = cache / f".rootfs-{suite}-{os.getpid()}"
        steps = [
            [
                *sudo,
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(['python3', *extras])}",
                suite,
                str(work),
            ],
            # what a sandbox never reads (docs, man pages, locales, apt lists)
            [
                *sudo,
                "sh",
                "-c",
                f"rm -rf {work}/usr/share/doc {work}/usr/share/man {work}/usr/share/info {work}/usr/share/locale {work}/var/lib/apt/lists/* {work}/var/cache/apt/*",
            ],
            [*sudo, "tar", "-C", str(work), "--numeric-owner", "-cf", f"{tarball}.tmp", "."],
        ]
        try:
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise DependencyNotInstalled(
                        f"{shlex.join(step)} failed (needs debootstrap, root and a Debian mirror): "
                        f"{(done.stderr or done.stdout)[-400:]}"
                    )
            os.replace(f"{tarball}.tmp", tarball)
        finally:
            subprocess.run([*sudo, "rm", "-rf", str(work)], check=False)
    done = docker_cli("import", "-c", 'CMD ["sleep", "infinity"]', str(tarball), image)
    if done.returncode != 0:
        raise DependencyNotInstalled(f"docker import of {tarball} failed: {done.stderr[-400:]}")
    return image


def wanted(spec: Any, src: Path) -> tuple[list[str], list[str], str | None]:
    """(build requirements, other packages, requirements file) an instance needs beside its
    repository's own dependencies; ``pytest`` is added when neither names it."""
    build = ["pip", "setuptools", "wheel"]
    pyproject = src / "pyproject.toml"
    if pyproject.is_file():
        try:
            import tomllib
        except ImportError:  # Python 3.10: the spec's packages must then name them
            tomllib = None
        if tomllib is not None:
            try:
                text = pyproject.read_text()
                build += list(tomllib.loads(text).get("build-system", {}).get("requires", []))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                pass
    packages = list(spec.pip_packages)
    requirements = spec.packages if spec.packages.endswith(".txt") else None
    if spec.packages and requirements is None and not spec.packages.endswith((".yml", ".yaml")):
        packages += spec.packages.split()
    names = {re.split(r"[<>=!~\[; ]", p, maxsplit=1)[0].lower() for p in build + packages}
    if "pytest" not in names and not (src / "src" / "_pytest").is_dir():  # pytest's own repo
        packages.append("pytest")
    return build, packages, requirements


def _ca_bundle() -> str | None:
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(name) and Path(os.environ[name]).is_file():
            return os.environ[name]
    return None


def fetch_wheels(spec: Any, rootfs: str, src: Path, extra_env: dict[str, str]) -> list[str]:
    """Downloads what the instance needs into its Python's wheelhouse, with that Python."""
    house = cache_root() / "swe-wheels" / f"py{spec.real_python}"
    house.mkdir(parents=True, exist_ok=True)
    if not list(house.glob("pip-*.whl")):
        done = subprocess.run(
            # only pip's own wheel comes from the host: the newest that runs on the target Python
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
             "--python-version", spec.real_python, "-d", str(house), "pip"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise DependencyNotInstalled(f"pip download pip failed: {done.stderr[-400:]}")
    pip = sorted(house.glob("pip-*.whl"))[-1].name
    mounts = ["-v", f"{house}:/wheels", "-v", f"{src}:/src:ro"]
    env = [arg for key, value in extra_env.items() for arg in ("-e", f"{key}={value}")]
    ca = _ca_bundle()
    if ca:
        mounts += ["-v", f"{ca}:/etc/turngym-ca.crt:ro"]
        env += ["-e", "PIP_CERT=/etc/turngym-ca.crt", "-e", "SSL_CERT_FILE=/etc/turngym-ca.crt"]
    build, packages, requirements = wanted(spec, src)
    files = ["-r", f"/src/{requirements}"] if requirements else []
    # a copy: building the metadata writes into the tree (egg-info), the clone stays untouched
    download = ["python3", f"/wheels/{pip}/pip", "download", "--dest", "/wheels", "/tmp/src"]
    download += [*build, *packages, *[f.replace("/src/", "/tmp/src/") for f in files]]
    command = ["sh", "-c", f"cp -r /src /tmp/src && exec {shlex.join(download)}"]
    done = docker_cli("run", "--rm", "--network", "host", *mounts, *env, rootfs, *command)
    if done.returncode != 0:
        raise DependencyNotInstalled(
            f"fetching wheels failed: {(done.stderr or done.stdout)[-1500:]}"
        )
    # the whole wheelhouse of this Python goes into the (install-stage) build context: pip's
    # report of what it saved leaves out what it reused while preparing metadata
    return sorted(path.name for path in house.iterdir() if path.suffix in (".whl", ".gz", ".zip"))


DOCKERFILE = """\
FROM {rootfs} AS install
COPY wheels /tmp/wheels
COPY src /testbed
ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 {env}
RUN python3 -m venv --without-pip {venv} \\
 && {venv}/bin/python /tmp/wheels/{pip}/pip install -q {build} \\
 && cd /testbed && PATH={venv}/bin:$PATH && {install} \\
 && {venv}/bin/python -m pip install -q --no-build-isolation {extras}
FROM {rootfs}
COPY --from=install {venv} {venv}
COPY --from=install /testbed /testbed
ENV PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin
WORKDIR /testbed
"""


def install_command(spec: Any) -> str:
    """The spec's install command, offline: a pip install gets no build isolation and PEP 517."""
    words = spec.install.split()
    if "pip" in words and "install" in words:
        at = words.index("install") + 1
        words[at:at] = ["-q", "--no-build-isolation", "--use-pep517"]
    return " ".join(words)


def build_context(dockerfile: str, src: Path, house: Path, wheels: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        archive.add(str(src), arcname="src")
        for name in wheels:
            archive.add(str(house / name), arcname=f"wheels/{name}")
    return buffer.getvalue()


def build_image(context: bytes, image: str, stamp: str) -> None:
    from turngym.envs.swe.docker_backend import connect

    try:
        connect().images.build(
            fileobj=io.BytesIO(context), custom_context=True, tag=image, rm=True, forcerm=True,
            network_mode="none", labels={"turngym.stamp": stamp},
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - docker.errors.BuildError: keep the log's tail
        lines = [
            str(c.get("stream") or c.get("error") or "") for c in getattr(error, "build_log", [])
        ]
        raise RuntimeError(f"docker build failed: {''.join(lines)[-3000:] or error}") from error
