#!/usr/bin/env bash
# Builds turngym/suite:latest (docker/suite/Dockerfile) without any registry or network:
#   1. the debootstrap base turngym/swe-rootfs:bookworm (docker/build_base.sh, when missing);
#   2. wheels of turngym and its env families' dependencies, built by the host's pip (PyPI or
#      its cache; compiled ones for the host's glibc, which is bookworm's here);
#   3. `docker build --network none` installing them offline.
# Needs a running engine (DOCKER_HOST; `source docker/ci_setup.sh` starts one) and a Python with
# pip (PYTHON, default: the repo's .venv, else python3).
#
#   bash docker/build_suite.sh [TAG]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
tag="${1:-turngym/suite:latest}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
if ! docker image inspect turngym/swe-rootfs:bookworm >/dev/null 2>&1; then
    PYTHON="$python" bash "$here/build_base.sh"
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
# A copy of the checkout's files (no .venv, build/ or caches) so the turngym wheel is clean.
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$context" 2>/dev/null) \
    || cp -r "$root"/{pyproject.toml,setup.py,README.md,turngym,envs,agents,credit} "$context"
mkdir -p "$context/wheels"
if ! "$python" -m pip wheel --quiet --wheel-dir "$context/wheels" \
    "$context[textworld,alfworld,webshop,search,bench,openenv]" pip >"$context/pip.log" 2>&1; then
    grep -v "^WARNING: Location" "$context/pip.log" | tail -n 30
    echo "build_suite: pip could not build the wheels (above)"
    exit 1
fi
mkdir -p "$context/image"
mv "$context/wheels" "$context/image/wheels"
cp "$here/suite/Dockerfile" "$context/image/Dockerfile"
docker build --quiet --network none -t "$tag" "$context/image" >/dev/null 2>"$context/build.log" \
    || { cat "$context/build.log"; exit 1; }
echo "built $tag"
