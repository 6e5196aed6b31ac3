#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
#
#   bash tests/run.sh [extra pytest args]
#
# 1. system packages: Docker engine, bubblewrap and debootstrap (SWE sandboxes), Chromium and its
#    driver (the WebShop browser test) — installed only when missing;
# 2. a virtualenv .venv with the CPU build of torch and turngym[test] (editable);
# 3. docker/ci_setup.sh: a private dockerd and the sandbox images (idempotent);
# 4. pytest over tests/ (the conformance check runs on every registered id) and the doctests.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== python environment"
# CMake, g++, gcc, make, python3-venv/-dev: fast-downward-textworld and jericho compile from source.
bash docker/toolchain.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 is the CPU build; naming it first keeps pip from pulling a CUDA wheel.
.venv/bin/python -m pip install -q torch==2.13.0 -e '.[test]'
# verl pins transformers 5.10.x, older than the main env's: its integration tests run in a venv of
# their own, run from tests/test_integrations_verl.py and tests/test_credit_verl.py (skip the
# build with TURNGYM_SKIP_VERL=1; those tests then skip and say why).
if [ "${TURNGYM_SKIP_VERL:-0}" != 1 ]; then
    [ -x .venv-verl/bin/python ] || python3 -m venv .venv-verl
    .venv-verl/bin/python -m pip install -q --upgrade pip
    .venv-verl/bin/python -m pip install -q torch==2.13.0 -e '.[verl,credit]' 'pytest>=8'
fi
# shellcheck disable=SC1091
source .venv/bin/activate

if [ -f docker/ci_setup.sh ]; then
    echo "== sandbox engine and images"
    # shellcheck disable=SC1091
    source docker/ci_setup.sh
fi

echo "== tests"
export TURNGYM_CACHE="${TURNGYM_CACHE:-$HOME/.cache/turngym-tests}"
python -m pytest -n 2 --durations=25 "$@"
