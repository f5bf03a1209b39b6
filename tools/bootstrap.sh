#!/usr/bin/env bash
# Install everything `make test` and `make demo` need on a bare Debian machine: system packages, the .venv
# with the dxflow package (editable) and the test tools. Idempotent; fast when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(openssl curl procps)
# The director's PostgreSQL tests start a private cluster from Debian's postgresql.
APT_PACKAGES+=(postgresql)
# The login tests run a real OpenLDAP and FreeRADIUS; the admin UI tests drive Debian's Chromium.
APT_PACKAGES+=(slapd ldap-utils freeradius chromium)
# The engine connection plugin's become test switches users with sudo.
APT_PACKAGES+=(sudo)
# The role tests check every rendered unit file with systemd-analyze verify (no systemd PID 1 needed).
APT_PACKAGES+=(systemd)
# Containers (issue 22): the execution environment, the roles under systemd PID 1, container workflows and the
# platform API run in Debian's podman with runc (crun fails here on hybrid cgroups); base images come from
# debootstrap, never from a registry (tools/images/build.sh).
# With --no-install-recommends podman's network stack must be named: netavark with aardvark-dns (workflow services
# and molecule hosts find each other by name), catatonit for --init, uidmap and slirp4netns as Debian recommends.
APT_PACKAGES+=(podman runc debootstrap netavark aardvark-dns catatonit uidmap slirp4netns iptables iproute2)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing system packages ${missing[*]} (run as root or install them)" >&2
  fi
fi

if [ "$(id -u)" = 0 ] && command -v podman >/dev/null; then
  # runc as the OCI runtime and ulimits rootful podman can set (without them: setrlimit ... Operation not permitted).
  mkdir -p /etc/containers/containers.conf.d
  conf=/etc/containers/containers.conf.d/50-dxflow.conf
  want=$'[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n[network]\nnetwork_backend = "netavark"'
  [ "$(cat "$conf" 2>/dev/null)" = "$want" ] || printf '%s\n' "$want" >"$conf"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v -e '^WARNING: Location' -e 'is ignored' || true
.venv/bin/python -c 'import dxflow, aiohttp, pytest, ansible' >/dev/null
# Wheels of the collection's requirements.txt and ansible-core, so the fresh-venv install test
# (tests/slow/ansible/test_galaxy_install.py) installs them offline.
ANSIBLE_CORE=$(.venv/bin/python -c 'import ansible.release as r; print(r.__version__)')
.venv/bin/python -m pip download -q -d .venv/wheelhouse -r requirements.txt "ansible-core==$ANSIBLE_CORE" 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'is ignored' || true
# containers.podman (molecule's podman driver) from PyPI's ansible wheel: Galaxy is not reachable everywhere.
VENV=.venv bash tools/collections.sh
touch .venv/.bootstrapped
echo "bootstrap: ready ($(.venv/bin/python --version))"
