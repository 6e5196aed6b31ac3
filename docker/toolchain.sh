#!/usr/bin/env bash
# The build tools `pip install '.[all]'` needs, installed when missing (Debian/Ubuntu, as root or
# with sudo). Two dependencies have no wheel on PyPI and compile from source:
#   - fast-downward-textworld (ALFWorld's PDDL planner, via alfworld -> textworld[pddl]): CMake, g++
#   - jericho (TextWorld's Z-machine interpreter): gcc, make
# plus python3-venv for `python3 -m venv`. Where apt-get or root is missing it prints what to install
# and exits 0, so a machine that already has the tools (or a wheel cache) goes on.
#
#   bash docker/toolchain.sh
set -uo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
    >/dev/null 2>&1 || missing+=(python3-dev)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; }; then
    echo "[toolchain] missing ${missing[*]}: install them with your package manager;" \
        "pip install '.[all]' compiles fast-downward-textworld (CMake, g++) and jericho (gcc, make)" >&2
    exit 0
fi
echo "[toolchain] installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
