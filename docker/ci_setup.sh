#!/usr/bin/env bash
# CI setup for the SWE sandboxes: a private Docker engine and the sandbox images. Idempotent and
# fast when already done (an engine that answers and up-to-date images are kept).
#
#   source docker/ci_setup.sh [STATE_DIR]      # exports DOCKER_HOST for the tests that follow
#   bash docker/ci_setup.sh [STATE_DIR]
#
# STATE_DIR (default $TURNGYM_DOCKER_STATE or ${TMPDIR:-/tmp}/turngym-docker; keep it short, the
# engine puts unix sockets under it) holds dockerd's data root, exec root, socket, pid file and log.
# Steps: apt-get install docker.io bubblewrap debootstrap when missing; start dockerd unless an
# engine answers; build turngym/swe-base:1 (docker/build_base.sh); fetch the pinned project sdists
# and build one image per project (python -m turngym.envs.swe.build images); unpack the local
# backend's jail root filesystem (python -m turngym.envs.swe.rootfs). A failure stops CI
# with the reason unless TURNGYM_DOCKER_OPTIONAL=1 (then the Docker tests skip, saying why).

_turngym_ci_setup() {
    local here root sudo started total python
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    root="${1:-}"
    # Sourced without arguments, "$@" is the caller's (tests/run.sh passes its pytest options):
    # an option is never a state directory.
    case "$root" in -*) root="" ;; esac
    root="${root:-${TURNGYM_DOCKER_STATE:-${TMPDIR:-/tmp}/turngym-docker}}"
    python="${PYTHON:-}"
    if [ -z "$python" ]; then  # the interpreter that has turngym: the active one, else the repo's .venv
        python=python
        if ! python -c 'import turngym' >/dev/null 2>&1 && [ -x "$here/../.venv/bin/python" ]; then
            python="$here/../.venv/bin/python"
        fi
    fi
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    total=$EPOCHREALTIME
    export TURNGYM_CACHE="${TURNGYM_CACHE:-$HOME/.cache/turngym-tests}"
    _tg_step() { awk -v now="$EPOCHREALTIME" -v then="$2" -v name="$1" \
        'BEGIN { printf "[ci_setup] %-40s %6.1f s\n", name, now - then }'; }

    started=$EPOCHREALTIME
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "[ci_setup] installing ${missing[*]}"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null || { echo "[ci_setup] apt-get failed"; return 1; }
    fi
    _tg_step "system packages" "$started"

    started=$EPOCHREALTIME
    if ! docker info >/dev/null 2>&1; then
        export DOCKER_HOST="unix://$root/docker.sock"
        if ! docker info >/dev/null 2>&1; then
            mkdir -p "$root"
            if [ -f "$root/dockerd.pid" ] && kill -0 "$(cat "$root/dockerd.pid")" 2>/dev/null; then
                echo "[ci_setup] dockerd (pid $(cat "$root/dockerd.pid")) runs but does not answer yet"
            else
                rm -f "$root/dockerd.pid" "$root/docker.sock"
                # shellcheck disable=SC2086
                # No bridge and no iptables: sandboxes and image builds all use network "none", and
                # this way dockerd also starts where iptables is missing (containers, minimal VMs).
                $sudo sh -c "nohup dockerd --data-root '$root/data' --exec-root '$root/exec' \
                    --pidfile '$root/dockerd.pid' --host 'unix://$root/docker.sock' --group '$(id -g)' \
                    --bridge none --iptables=false ${TURNGYM_DOCKERD_ARGS:-} >'$root/dockerd.log' 2>&1 &"
            fi
            local waited=0
            until docker info >/dev/null 2>&1; do
                sleep 0.2; waited=$((waited + 1))
                if [ "$waited" -ge 150 ]; then
                    echo "[ci_setup] dockerd did not answer in 30 s; its log ($root/dockerd.log):"
                    tail -n 20 "$root/dockerd.log" 2>/dev/null
                    return 1
                fi
            done
        fi
    fi
    _tg_step "docker engine (${DOCKER_HOST:-default})" "$started"

    started=$EPOCHREALTIME
    PYTHON="$python" bash "$here/build_base.sh" || { echo "[ci_setup] base image build failed"; return 1; }
    _tg_step "base image turngym/swe-base:1" "$started"

    started=$EPOCHREALTIME
    if ! "$python" -c 'import turngym.envs.swe.build' >/dev/null 2>&1; then
        echo "[ci_setup] $python cannot import turngym: activate the virtualenv (source .venv/bin/activate)" \
             "or set PYTHON=/path/to/python with turngym installed, then source docker/ci_setup.sh again"
        return 1
    fi
    "$python" -m turngym.envs.swe.build images || { echo "[ci_setup] project images failed"; return 1; }
    docker image prune -f >/dev/null 2>&1 || true  # superseded builds
    _tg_step "project images" "$started"

    started=$EPOCHREALTIME  # the local backend's jail root: the same Debian root, unpacked once
    "$python" -m turngym.envs.swe.rootfs >/dev/null || { echo "[ci_setup] local root filesystem failed"; return 1; }
    _tg_step "local jail root filesystem" "$started"
    _tg_step "total" "$total"
}

if _turngym_ci_setup "$@"; then
    _turngym_rc=0
else
    _turngym_rc=$?
    echo "[ci_setup] FAILED: the SWE Docker tests cannot run (see above)."
    if [ "${TURNGYM_DOCKER_OPTIONAL:-0}" = 1 ]; then _turngym_rc=0; fi
fi
unset -f _turngym_ci_setup _tg_step
# Works both sourced (return) and executed (exit).
(return 0 2>/dev/null) && return "$_turngym_rc" || exit "$_turngym_rc"
