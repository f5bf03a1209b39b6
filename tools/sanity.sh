#!/usr/bin/env bash
# `make sanity`: ansible-test sanity on a temp ansible_collections/dxflow/remote copy of the collection content
# (tracked and new, not ignored files), with Python 3.11, locally. Extra arguments go to ansible-test
# (e.g. --test pep8). The Python package (src/), its pytest suites (tests/ but tests/sanity/ and the integration
# targets, tests/integration/targets/), tools/ and bench/ are left out: they are not Ansible content and are linted
# by ruff (`make lint`) with the project's own rules.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python
# ansible-test downloads get-pip.py from a host we cannot reach; it uses a cached copy when there is one.
PIP_VERSION=$("$PY" -c 'from types import SimpleNamespace as N
from ansible_test._internal.python_requirements import get_venv_packages as g
print(g(N(version="3.11"))["pip"])')
CACHE=$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py
mkdir -p "$(dirname "$CACHE")"
cp "$ROOT/tools/ansible_test_get_pip.py" "$CACHE"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DEST=$TMP/ansible_collections/dxflow/remote
mkdir -p "$DEST"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | grep -zEv '^(src|tools|bench)/|^tests/([^si]|s[^a]|i[^n])|^tests/integration/([^t]|t[^a])' \
    | xargs -0 cp --parents -t "$DEST")
cd "$DEST"
git init -q && git add -A
PATH=$VENV/bin:$PATH "$VENV/bin/ansible-test" sanity --python 3.11 --requirements --local --color no "$@"
