"""mTLS client bundles: ``ca.crt``, ``tls.crt``, ``tls.key`` (default ``<home>/<profile>/mtls/``)."""

from __future__ import annotations

import os
from pathlib import Path

from dxflow.common.files import ensure_private_dir, is_private, write_private
from dxflow.protocol.errors import ConfigError

__all__ = ["check_bundle", "write_bundle"]


def write_bundle(folder: Path, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> Path:
    """Write the three files atomically (key 0600, folder 0700); return the folder."""
    ensure_private_dir(folder)
    write_private(folder / "tls.key", key_pem)
    write_private(folder / "tls.crt", cert_pem, mode=0o644)
    write_private(folder / "ca.crt", ca_pem, mode=0o644)
    return folder


def check_bundle(cert: str, key: str, ca: str | None) -> None:
    """Clear errors for a bundle that cannot be used: missing, unreadable, or a key open to others."""
    for label, path in (("client certificate", cert), ("client key", key), ("CA certificate", ca)):
        if path is None:
            continue
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{label} {p} does not exist")
        if not os.access(p, os.R_OK):
            raise ConfigError(f"{label} {p} is not readable by this user")
    if not is_private(Path(key)):
        raise ConfigError(f"client key {key} is readable by group or others; run: chmod 600 {key}")
