"""Issue 28 (part B): the local backend's host-side work is bounded and its jail owns its root.

Unit tests of :mod:`turngym.envs.swe.local_tree` (scan, diff, removal) on trees an agent could
leave, of reaping such trees after their owner died, of the CPU limit, and of the private root
filesystem. The env-level attacks are in test_swe_jail.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from turngym.envs.swe import local_tree
from turngym.envs.swe.sandbox.swe_diff import make_diff_files, read_tree


@pytest.fixture(autouse=True)
def _remove_deep_trees(tmp_path):
    """pytest's own clean-up of tmp_path recurses (shutil.rmtree): the deep trees go first."""
    yield
    local_tree.remove_tree(tmp_path)


def _deep(root: str, levels: int = 1200, name: str = "dddddddddd") -> None:
    """``levels`` nested folders below ``root`` (deeper than PATH_MAX with 10-letter names)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("bottom.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("x = 1\n")
    finally:
        os.close(fd)


def _hostile_tree(root) -> None:
    root = str(root)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "a.py"), "w") as handle:
        handle.write("changed\n")
    for raw in (b"bad\xff.txt", b"x\n@@ -0,0 +1 @@\n+import os", b"tab\tname.py"):
        with open(os.path.join(os.fsencode(root), raw), "wb") as handle:
            handle.write(b"data\n")
    os.mkfifo(os.path.join(root, "pipe"))
    os.symlink("loop2", os.path.join(root, "loop1"))
    os.symlink("loop1", os.path.join(root, "loop2"))
    os.symlink("/", os.path.join(root, "rootlink"))
    os.link(os.path.join(root, "a.py"), os.path.join(root, "hard.py"))
    _deep(root)


def test_scan_and_diff_survive_a_hostile_tree(tmp_path) -> None:
    _hostile_tree(tmp_path)
    found = local_tree.scan(tmp_path, max_entries=10_000, max_bytes=1 << 30)
    assert found.over is None and found.entries > 1200
    assert set(found.files) == {"a.py", "hard.py"}  # the deep file's path is too long to open
    assert len(found.odd) == 4 and "bad\\xff.txt" in found.odd
    start = {"a.py": b"x = 1\n"}
    diff = local_tree.tree_diff(start, tmp_path, found)
    assert diff.startswith("diff --git a/a.py b/a.py") and "import os" not in diff
    assert "+++ b/hard.py" in diff and "pipe" not in diff and "loop" not in diff
    digest = local_tree.diff_digest(start, tmp_path, found)
    assert digest == hashlib.sha1(diff.encode()).hexdigest()


def test_the_local_diff_equals_the_sandbox_diff_on_an_ordinary_tree(tmp_path) -> None:
    """The host's streamed diff is the one the in-sandbox tool makes (same text, same hash)."""
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 2\n")
    (tmp_path / "pkg" / "new.py").write_text("NEW = 1\n")
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    start = {"pkg/mod.py": b"VALUE = 1\n", "gone.txt": b"bye\n"}
    found = local_tree.scan(tmp_path, 1000, 1 << 30)
    expected = make_diff_files(start, read_tree(str(tmp_path)))
    assert local_tree.tree_diff(start, tmp_path, found) == expected and "Binary" in expected
    assert "gone.txt" in expected and "pycache" not in expected


def test_the_sandbox_tools_streamed_diff_equals_make_diff(tmp_path) -> None:
    """Docker's in-sandbox diff is made one file at a time now (a workspace full of text files
    was diffed whole and the tool was killed by the container's memory limit): same text."""
    from turngym.envs.swe.sandbox import swe_tool
    from turngym.envs.swe.sandbox.swe_diff import make_diff

    base, work = tmp_path / "base", tmp_path / "work"
    for root in (base, work):
        (root / "pkg").mkdir(parents=True)
        (root / "pkg" / "same.py").write_text("same\n")
    (base / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (work / "pkg" / "mod.py").write_text("VALUE = 2\n")
    (work / "pkg" / "new.txt").write_text("text\n" * 1000)
    (base / "gone.py").write_text("bye\n")
    os.mkfifo(work / "pipe")
    _deep(str(work), levels=1100, name="d")
    expected = make_diff(str(base), str(work))
    request = {"base": str(base), "workspace": str(work), "with_diff": True}
    result = swe_tool._diff_result(request)
    assert result["diff"] == expected and "d/d/d/" in expected and "gone.py" in expected
    assert result["diff_hash"] == hashlib.sha1(expected.encode()).hexdigest()


def test_scan_stops_at_the_inode_quota_before_reading_anything(tmp_path) -> None:
    for index in range(3000):
        (tmp_path / f"f{index}").touch()
    found = local_tree.scan(tmp_path, max_entries=1000, max_bytes=1 << 30)
    assert found.over and "inode quota" in found.over and found.entries == 1001


def test_scan_counts_bytes_and_sparse_files_at_their_size(tmp_path) -> None:
    with open(tmp_path / "sparse", "wb") as handle:
        handle.truncate(50 << 20)  # no blocks allocated
    found = local_tree.scan(tmp_path, max_entries=1000, max_bytes=40 << 20)
    assert found.over and "disk quota" in found.over
    assert local_tree.scan(tmp_path, 1000, 60 << 20).over is None


def test_read_file_is_bounded_and_refuses_special_files(tmp_path) -> None:
    from turngym.envs.swe.sandbox.swe_diff import MAX_FILE_BYTES

    (tmp_path / "big").write_bytes(b"y" * (MAX_FILE_BYTES + 1000))
    os.mkfifo(tmp_path / "pipe")
    os.symlink("big", tmp_path / "link")
    assert len(local_tree.read_file(tmp_path, "big")) == MAX_FILE_BYTES + 1
    assert local_tree.read_file(tmp_path, "pipe") is None  # never blocks on a FIFO
    assert local_tree.read_file(tmp_path, "link") is None


def test_remove_tree_removes_what_shutil_rmtree_could_not(tmp_path) -> None:
    """Deeper than the recursion limit, odd names, unreadable folders (as a non-root owner too)."""
    root = tmp_path / "ws"
    _hostile_tree(root)
    os.makedirs(root / "locked" / "inner")
    os.chmod(root / "locked" / "inner", 0)
    os.chmod(root / "locked", 0)
    assert local_tree.remove_tree(root) and not root.exists()
    assert local_tree.remove_tree(root)  # idempotent


def _local_reason() -> str | None:
    from turngym.envs.swe.local_backend import bwrap_available
    from turngym.envs.swe.rootfs import rootfs_reason

    return bwrap_available() or rootfs_reason()


def test_reap_removes_a_dead_owners_hostile_workspace() -> None:
    """Defect 2: the next process's reap raised RecursionError on a deep folder a dead owner
    left (``ignore_errors`` does not catch it), so every later reset on the host raised."""
    from turngym.envs.swe.local_state import LOCAL_ROOT, reap

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    LOCAL_ROOT.mkdir(mode=0o711, exist_ok=True)
    left = LOCAL_ROOT / f"{dead.pid}-0123456789ab"
    mounted = local_tree.mount_tmpfs(left / "workspace", 64 << 20, 10_000)  # as root sandboxes do
    assert mounted == (os.geteuid() == 0)
    _hostile_tree(left / "workspace")
    reap()
    assert not left.exists()
    with open("/proc/self/mounts") as handle:
        assert str(left) not in handle.read()


@pytest.mark.skipif(_local_reason() is not None, reason=f"local: {_local_reason()}")
def test_a_cpu_limit_applies_to_every_command() -> None:
    """Two spinning processes get ``cpus`` cores between them (cgroup), or each at most its
    share of CPU seconds (RLIMIT_CPU, when this process may not make a CPU cgroup)."""
    from turngym.envs.swe.local_backend import LocalSandbox
    from turngym.envs.swe.sandbox_base import Limits, StartTree

    sandbox = LocalSandbox(StartTree([]), Limits(cpus=0.25, command_timeout=8))
    spin = (
        "import time\nt = time.time()\nwhile time.time() - t < 3: pass\nprint(time.process_time())"
    )
    try:
        result = sandbox.call(
            {"op": "run", "command": f"(python3 -c '{spin}' &); python3 -c '{spin}'; wait"}
        )
        if sandbox.cpu_limit == "cgroup":
            quotas = [
                (g / name).read_text().split()[0]
                for g in sandbox.cgroups
                for name in ("cpu.max", "cpu.cfs_quota_us")
                if (g / name).exists()
            ]
            assert quotas == ["25000"], quotas  # of every 100,000 us period
            used = float(result["output"].split()[-1])
            assert used < 0.25 * 3 * 1.6, result  # ~0.4 s each of 3 s; ~3 s unlimited
        # Without a CPU cgroup (forced here where there is one): RLIMIT_CPU = ceil(8 * 0.25) + 1.
        sandbox.cpu_limit = "rlimit"
        result = sandbox.call({"op": "run", "command": "ulimit -t"})
        assert result["output"].split()[0] == "3", result
    finally:
        sandbox.close()


@pytest.mark.skipif(_local_reason() is not None, reason=f"local: {_local_reason()}")
def test_the_jail_reads_its_own_root_not_the_hosts() -> None:
    """Defect 4: the jail bound the host's /usr, where Debian's setuptools vendors a clean
    more_itertools (the answer of 19-20 more-itertools tasks). Its root is now the private
    Debian root filesystem: no host package is importable or listed."""
    from turngym.envs.swe.local_backend import LocalSandbox
    from turngym.envs.swe.rootfs import local_rootfs
    from turngym.envs.swe.sandbox_base import Limits, StartTree

    rootfs = local_rootfs()
    sandbox = LocalSandbox(StartTree([]), Limits())
    try:
        probe = (
            "for m in setuptools more_itertools pkg_resources pip; do python3 -c "
            '"import $m" 2>/dev/null && echo IMPORTED $m; done; '
            "find / -xdev -name 'more_itertools*' -not -path '/proc/*' 2>/dev/null; "
            "ls /usr/lib/python3/dist-packages /usr/local/lib 2>/dev/null | head; "
            "python3 -c 'import sys; print(sys.version.split()[0])'; echo END"
        )
        output = sandbox.call({"op": "run", "command": probe})["output"]
        assert output.rstrip().endswith("END") and "IMPORTED" not in output, output
        assert "more_itertools" not in output, output
        version = subprocess.run(
            ["ls", str(rootfs / "usr" / "lib")], capture_output=True, text=True
        ).stdout
        jail_python = output.split()[-2]
        assert f"python{'.'.join(jail_python.split('.')[:2])}" in version.split(), (output, version)
    finally:
        sandbox.close()
