#!/usr/bin/env bash
# Builds the SWE sandbox base image turngym/swe-base:1 without any registry:
#   1. a Debian bookworm root filesystem with python3 from debootstrap (minbase), slimmed and
#      cached as a tarball in $TURNGYM_CACHE/swe-docker (so later runs skip debootstrap, ~50 s);
#   2. `docker import` of that tarball as turngym/swe-rootfs:bookworm;
#   3. pytest (pure-Python wheels the host downloads with pip) layered on it by docker/base/Dockerfile.
# Idempotent: an image whose stamp label matches the inputs is kept. Needs a running engine
# (DOCKER_HOST), debootstrap, and root (or sudo) for debootstrap.
#
#   bash docker/build_base.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${TURNGYM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/turngym}/swe-docker"
python="${PYTHON:-python3}"
suite="bookworm"
pytest_version="${TURNGYM_SWE_PYTEST:-9.2.0}"
rootfs_image="turngym/swe-rootfs:$suite"
base_image="turngym/swe-base:1"
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
mkdir -p "$cache"

stamp="$(cat "$here/base/Dockerfile" "$here/build_base.sh" | sha256sum | cut -c1-16)-$pytest_version"
if [ "$(docker image inspect -f '{{ index .Config.Labels "turngym.stamp" }}' "$base_image" 2>/dev/null)" = "$stamp" ]; then
    echo "base image $base_image is up to date"
    exit 0
fi

tarball="$cache/rootfs-$suite-python3.tar"
if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
    if [ ! -s "$tarball" ]; then
        work="$(mktemp -d "$cache/.rootfs.XXXXXX")"
        echo "debootstrap $suite (minbase + python3) into $work ..."
        $sudo debootstrap --variant=minbase --include=python3 "$suite" "$work/root" >"$work/debootstrap.log" 2>&1 \
            || { tail -n 30 "$work/debootstrap.log"; $sudo rm -rf "$work"; exit 1; }
        # Drop what a sandbox never reads (docs, man pages, locales, apt lists): ~60 MB.
        $sudo rm -rf "$work/root"/usr/share/{doc,man,info,locale} "$work/root"/var/lib/apt/lists/* \
            "$work/root"/var/cache/apt/* "$work/root"/var/log/*
        $sudo tar -C "$work/root" --numeric-owner -cf "$tarball.tmp" .
        $sudo chown "$(id -u):$(id -g)" "$tarball.tmp"
        mv "$tarball.tmp" "$tarball"
        $sudo rm -rf "$work"
    fi
    docker import -c 'CMD ["sleep", "infinity"]' "$tarball" "$rootfs_image" >/dev/null
    echo "imported $rootfs_image"
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
site="$cache/site-pytest-$pytest_version"
if [ ! -d "$site" ]; then
    "$python" -m pip install --quiet --no-compile --target "$site.tmp" --only-binary :all: \
        --python-version 3.11 --implementation py --platform any "pytest==$pytest_version"
    rm -rf "$site.tmp/bin"
    mv "$site.tmp" "$site"
fi
cp "$here/base/Dockerfile" "$context/Dockerfile"
cp -r "$site" "$context/site"
docker build --quiet --network none --label "turngym.stamp=$stamp" -t "$base_image" "$context" >/dev/null
echo "built $base_image"
