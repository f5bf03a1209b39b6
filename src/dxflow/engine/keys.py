"""The engine's own key and the registered public keys (``data_dir/keys/<name>.json``)."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dxflow.common.crypto import key_id, load_public_key, public_pem
from dxflow.common.files import ensure_private_dir, write_private
from dxflow.engine.permissions import Permission, parse_permissions
from dxflow.protocol.errors import Conflict

__all__ = ["ENGINE_KEY_NAME", "KeyStore", "RegisteredKey"]

log = logging.getLogger(__name__)
ENGINE_KEY_NAME = "engine"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass
class RegisteredKey:
    """A public key allowed to log in, with its permissions."""

    name: str
    public_key: rsa.RSAPublicKey = field(repr=False)
    permissions: list[str]
    disabled: bool = False
    created_at: float = field(default_factory=time.time)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def to_public(self) -> dict[str, object]:
        """What the API shows about the key."""
        return {
            "name": self.name,
            "id": self.key_id,
            "permissions": list(self.permissions),
            "disabled": self.disabled,
            "created_at": self.created_at,
            "public_key": public_pem(self.public_key).decode(),
        }

    def to_entity(self) -> dict[str, object]:
        """The key as the public dxflow API shows it (``/api/engine/key/``): ``identity`` is the key's name."""
        return {
            "identity": self.name,
            "permissions": list(self.permissions),
            "disabled": self.disabled,
            "type": "RSA",
            "value": public_pem(self.public_key).decode(),
        }

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


class KeyStore:
    """In-memory view of the keys, written through to disk."""

    def __init__(self, engine_key: rsa.RSAPrivateKey, keys_dir: Path) -> None:
        self.engine_key = engine_key
        self._dir = ensure_private_dir(keys_dir)
        self._keys: dict[str, RegisteredKey] = {
            ENGINE_KEY_NAME: RegisteredKey(
                ENGINE_KEY_NAME, engine_key.public_key(), [Permission.MASTER.value], created_at=0.0
            )
        }
        self._load()

    def _load(self) -> None:
        for path in sorted(self._dir.glob("*.json")):
            try:
                raw = json.loads(path.read_text())
                key = RegisteredKey(
                    name=raw["name"],
                    public_key=load_public_key(raw["public_key"].encode()),
                    permissions=[p.value for p in parse_permissions(raw["permissions"], strict=False)],
                    disabled=bool(raw.get("disabled", False)),
                    created_at=float(raw.get("created_at", 0)),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("ignoring unreadable key file %s: %s", path, exc)
                continue
            same = next((k for k in self._keys.values() if k.key_id == key.key_id), None)
            if same is not None:
                log.error("ignoring key file %s: the same public key is registered as %r", path, same.name)
                continue
            self._keys[key.name] = key

    def _save(self, key: RegisteredKey) -> None:
        data = asdict(key) | {"public_key": public_pem(key.public_key).decode()}
        write_private(self._dir / f"{key.name}.json", json.dumps(data, indent=2))

    def get(self, name: str) -> RegisteredKey | None:
        return self._keys.get(name)

    def all(self) -> list[RegisteredKey]:
        return sorted(self._keys.values(), key=lambda k: k.name)

    def enabled(self) -> list[RegisteredKey]:
        return [k for k in self._keys.values() if not k.disabled]

    def register(self, name: str, pem: bytes, permissions: object, disabled: bool = False) -> RegisteredKey:
        """Add or replace a key; ValueError on a bad name, key or permission, Conflict (409) when the same public
        key is registered under another name (a login could not tell which name and permissions it means)."""
        if not _NAME.match(name) or name == ENGINE_KEY_NAME:
            raise ValueError(
                f"invalid key name {name!r}: use 1-64 of letters, digits, '_', '.', '@', '-' (not 'engine')"
            )
        key = RegisteredKey(
            name=name,
            public_key=load_public_key(pem),
            permissions=[p.value for p in parse_permissions(permissions)],
            disabled=disabled,
        )
        other = next((k for k in self._keys.values() if k.key_id == key.key_id and k.name != name), None)
        if other is not None:
            raise Conflict(
                409,
                f"this public key is already registered as {other.name!r}: change that registration "
                f"(register it again under {other.name!r}) or unregister it first",
            )
        self._save(key)
        self._keys[name] = key
        return key

    def set_disabled(self, name: str, disabled: bool) -> RegisteredKey:
        key = self._require(name)
        key.disabled = disabled
        self._save(key)
        return key

    def unregister(self, name: str) -> None:
        self._require(name)
        (self._dir / f"{name}.json").unlink(missing_ok=True)
        del self._keys[name]

    def _require(self, name: str) -> RegisteredKey:
        key = self._keys.get(name)
        if key is None:
            raise KeyError(name)
        if name == ENGINE_KEY_NAME:
            raise PermissionError("the engine's own key cannot be changed")
        return key
