#!/usr/bin/env bash
# The Ansible collections the tests need beside ansible-core, installed offline-capable into .venv/collections
# (ANSIBLE_COLLECTIONS_PATH of the molecule podman scenarios): containers.podman, for molecule-plugins' podman driver
# (its create/destroy playbooks and the containers.podman.podman connection).
#
# Ansible Galaxy is not reachable from every machine; PyPI is. The `ansible` package on PyPI bundles a tested
# containers.podman (GPL-3.0-or-later, about 0.8 MB of its 54 MB wheel): download that wheel once with pip (pip's
# cache and hash checks apply) and extract only ansible_collections/containers/podman/. Idempotent: nothing is
# downloaded while the installed copy is the wanted one.
#
#   bash tools/collections.sh            # or: VENV=/path/to/venv bash tools/collections.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
ANSIBLE_BUNDLE=${DXFLOW_ANSIBLE_BUNDLE:-12.3.0}  # ansible 12.3.0 ships containers.podman 1.18.0
WANTED=containers/podman
DEST=$VENV/collections
stamp=$DEST/ansible_collections/$WANTED/.from-ansible-$ANSIBLE_BUNDLE

if [ -f "$stamp" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "ansible==$ANSIBLE_BUNDLE" 2>&1 \
  | grep -v -e '^WARNING: Location' -e 'is ignored' || true
wheel=$(ls "$tmp"/ansible-"$ANSIBLE_BUNDLE"-*.whl)
rm -rf "${DEST:?}/ansible_collections/$WANTED"
"$VENV/bin/python" - "$wheel" "$DEST" "ansible_collections/$WANTED/" <<'EOF'
import sys
import zipfile

wheel, dest, prefix = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(prefix)]
    if not members:
        sys.exit(f"collections: {prefix} is not in {wheel}")
    z.extractall(dest, members)
EOF
touch "$stamp"
echo "collections: $WANTED from ansible $ANSIBLE_BUNDLE into $DEST"
