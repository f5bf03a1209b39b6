"""Engine-side helpers that work on the data dir without a running engine."""

from __future__ import annotations

from pathlib import Path

from dxflow.common.crypto import KeyFileError, load_private_key
from dxflow.engine.keys import ENGINE_KEY_NAME, KeyStore
from dxflow.engine.tokens import TokenIssuer

__all__ = ["mint_local_token"]


def mint_local_token(data_dir: Path, lifetime: float) -> str:
    """A MASTER token signed with ``data_dir/engine.key`` (what `dxflow engine token` prints on the host)."""
    key_path = data_dir / "engine.key"
    if not key_path.exists():
        raise KeyFileError(f"no engine key at {key_path}; start the engine once or pass --data-dir")
    key = load_private_key(key_path)
    store = KeyStore(key, data_dir / "keys")
    own = store.get(ENGINE_KEY_NAME)
    assert own is not None
    token, _ = TokenIssuer(key).mint(own.name, own.key_id, own.permissions, lifetime)
    return token
