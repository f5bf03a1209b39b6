"""Password hashes for the director's local users, keeping a stored hash while it still matches.

Reads JSON on stdin: {"users": [{"name", "password"?, "password_hash"?}], "config": PATH}; prints {name: hash}.
Run with the dxflow venv's python (it uses dxflow.director.passwords).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from dxflow.director.passwords import hash_password, verify_password


def main() -> None:
    spec = json.load(sys.stdin)
    path = Path(spec["config"])
    stored: dict[str, str] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        stored = dict(((data.get("auth") or {}).get("users")) or {})
    out: dict[str, str] = {}
    for user in spec["users"]:
        name = user["name"]
        if user.get("password_hash"):
            out[name] = user["password_hash"]
        elif user.get("password"):
            old = stored.get(name, "")
            out[name] = old if old and verify_password(user["password"], old) else hash_password(user["password"])
        else:
            raise SystemExit(f"dxflow_director_users: user {name!r} needs password or password_hash")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
