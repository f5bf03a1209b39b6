"""Make the engine's registered public keys match a desired list (run with the dxflow venv's python).

Reads JSON on stdin: {"keys": [{"name", "public_key", "permissions", "disabled", "state"}], "check": bool}.
The engine is reached through the environment (CONNECTION_ADDRESS, CONNECTION_KEY, CONNECTION_FINGERPRINT).
Prints JSON {"changed", "registered", "unregistered"}; errors: one line on stderr, exit 1.
"""

from __future__ import annotations

import json
import sys

from dxflow.client.engine import EngineClient
from dxflow.protocol.errors import DxflowError
from dxflow.client.profiles import ProfileStore
from dxflow.client.session import Session
from dxflow.client.settings import resolve_settings
from dxflow.common.crypto import KeyFileError, key_id, load_public_key


def main() -> None:
    spec = json.load(sys.stdin)
    store = ProfileStore()
    session = Session(resolve_settings(store=store), store)
    engine = EngineClient(session)
    current = {k["name"]: k for k in engine.keys()}  # noqa: SIM118 (an SDK call, not a dict)
    registered, unregistered = [], []
    for want in spec["keys"]:
        name = want["name"]
        have = current.get(name)
        if want.get("state", "present") == "absent":
            if have:
                unregistered.append(name)
                if not spec.get("check"):
                    engine.unregister_key(name)
            continue
        try:
            wanted_id = key_id(load_public_key(want["public_key"].encode()))
        except KeyFileError as exc:
            raise SystemExit(f"dxflow_server_keys: key {name!r}: {exc}") from None
        perms = sorted(p.upper() for p in want.get("permissions") or ["READ_ONLY"])
        same = (
            have is not None
            and have["id"] == wanted_id
            and sorted(have["permissions"]) == perms
            and bool(have["disabled"]) == bool(want.get("disabled", False))
        )
        if not same:
            registered.append(name)
            if not spec.get("check"):
                engine.register_key(name, want["public_key"], perms, bool(want.get("disabled", False)))
    session.close()
    print(json.dumps({"changed": bool(registered or unregistered), "registered": registered,
                      "unregistered": unregistered}))


if __name__ == "__main__":
    try:
        main()
    except DxflowError as exc:
        raise SystemExit(f"dxflow_server_keys: {exc}") from None
