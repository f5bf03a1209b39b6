#!/usr/bin/env bash
# Build the local container images the tests use, without any registry: a Debian base made by debootstrap from
# Debian's package registry, then images layered on it with podman build. Idempotent: an image that exists is kept
# (DXFLOW_IMAGES_REBUILD=1 rebuilds). Needs root, podman (runtime runc) and debootstrap (tools/bootstrap.sh).
#
#   localhost/dxflow/debian:bookworm   minbase + ca-certificates + python3 (workflow service images build on it)
#   localhost/dxflow/systemd:bookworm  + systemd as PID 1, python3-venv, sudo (molecule hosts for the roles)
#   localhost/dxflow/ee-base:bookworm  + pip, ansible-core, ansible-runner (base of the execution environment)
set -euo pipefail
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "images: podman and debootstrap are needed (tools/bootstrap.sh installs them as root)" >&2
  exit 1
fi
# Two runs on one machine (two clones' make test) share the images: one builds, the other waits and reuses.
exec 9>/run/lock/dxflow-images.lock
flock 9
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd ../.. && pwd)
MIRROR=${DXFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CA_BUNDLE=${DXFLOW_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
rebuild=${DXFLOW_IMAGES_REBUILD:-0}

# An image is kept while its recipe (Containerfile and build args, or the debootstrap line) is the one it was made
# from: the recipe's digest is its label dxflow.recipe.
recipe() { sha256sum | cut -c1-16; }
have() {  # NAME DIGEST
  [ "$rebuild" != 1 ] && [ "$(podman image inspect --format '{{index .Labels "dxflow.recipe"}}' "$1" 2>/dev/null)" = "$2" ]
}
log() { echo "images: $*"; }

DEBOOTSTRAP=(debootstrap --variant=minbase --include=ca-certificates,python3 "$SUITE")
base_recipe=$(echo "${DEBOOTSTRAP[*]} $MIRROR" | recipe)
if ! have localhost/dxflow/debian:$SUITE "$base_recipe"; then
  rootfs=$(mktemp -d /var/tmp/dxflow-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap $SUITE (minbase) from $MIRROR"
  start=$SECONDS
  if ! "${DEBOOTSTRAP[@]}" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1; then
    tail -20 "$rootfs.log" >&2
    echo "images: debootstrap failed (log above)" >&2
    exit 1
  fi
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' --change "LABEL dxflow.recipe=$base_recipe" \
    - localhost/dxflow/debian:$SUITE >/dev/null 2>&1
  rm -rf "$rootfs"
  trap - EXIT
  log "localhost/dxflow/debian:$SUITE imported in $((SECONDS - start)) s"
fi

# The build context carries the host's CA bundle: pip reaches PyPI only with it (apt works without).
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$CA_BUNDLE" "$ctx/host-ca.crt"
ANSIBLE_CORE=$("$root/.venv/bin/python" -c 'import ansible.release as r; print(r.__version__)' 2>/dev/null || echo 2.19.15)
ANSIBLE_RUNNER=$("$root/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ansible-runner"))' 2>/dev/null || echo 2.4.3)

build() {  # NAME CONTAINERFILE [build args...]
  local name=$1 file=$2; shift 2
  local digest
  digest=$( (cat "$here/$file"; echo "$base_recipe $*") | recipe)
  if have "$name" "$digest"; then return; fi
  log "building $name"
  local start=$SECONDS
  if ! podman build --network host --layers -q -t "$name" --label "dxflow.recipe=$digest" -f "$here/$file" "$@" \
      "$ctx" >"$ctx/build.log" 2>&1; then
    tail -30 "$ctx/build.log" >&2
    echo "images: building $name failed (log above)" >&2
    exit 1
  fi
  log "$name built in $((SECONDS - start)) s"
}

build localhost/dxflow/systemd:$SUITE systemd.Containerfile
build localhost/dxflow/ee-base:$SUITE ee-base.Containerfile \
  --build-arg ANSIBLE_CORE="$ANSIBLE_CORE" --build-arg ANSIBLE_RUNNER="$ANSIBLE_RUNNER"
log "ready: $(for i in debian systemd ee-base; do
  podman image inspect --format "localhost/dxflow/$i:$SUITE {{.Size}}" "localhost/dxflow/$i:$SUITE" | numfmt --field 2 --to si | tr -s " "
done | paste -sd ' ')"
