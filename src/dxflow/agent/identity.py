"""The agent's persistent identity in ``data_dir``: GUID, key (0600), certificate and the pinned director CA."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dxflow.common.ca import csr_to_b64, generate_agent_key, make_csr
from dxflow.common.crypto import private_pem
from dxflow.common.files import ensure_private_dir, is_private, write_private

__all__ = ["AgentIdentity", "IdentityError"]


class IdentityError(Exception):
    """The identity files cannot be used."""


@dataclass
class AgentIdentity:
    """Paths and loaded values of the agent's identity."""

    data_dir: Path
    guid: str
    key: ec.EllipticCurvePrivateKey

    @property
    def common_name(self) -> str:
        return f"dxflow-agent-{self.guid}"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "agent.key"

    @property
    def cert_path(self) -> Path:
        return self.data_dir / "agent.crt"

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "ca.crt"

    @classmethod
    def load(cls, data_dir: Path) -> AgentIdentity:
        """Load or create the GUID and key; refuse a key file open to group or others."""
        ensure_private_dir(data_dir)
        guid_path = data_dir / "agent.guid"
        if guid_path.exists():
            guid = guid_path.read_text().strip()
            try:
                guid = str(uuid.UUID(guid))
            except ValueError:
                raise IdentityError(f"{guid_path} does not hold a UUID") from None
        else:
            guid = str(uuid.uuid4())
            write_private(guid_path, guid + "\n", mode=0o644)
        key_path = data_dir / "agent.key"
        if key_path.exists():
            if not is_private(key_path):
                raise IdentityError(f"{key_path} is readable by group or others; run: chmod 600 {key_path}")
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise IdentityError(f"{key_path} is not an ECDSA key")
        else:
            key = generate_agent_key()
            write_private(key_path, private_pem(key))
        return cls(data_dir=data_dir, guid=guid, key=key)

    def csr(self) -> str:
        """A fresh CSR (standard base64 DER) for this agent's name and key."""
        return csr_to_b64(make_csr(self.key, self.common_name))

    def certificate(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def store(self, certificate: str, ca: str | None) -> None:
        """Save a certificate issued by the director (and pin the CA the first time)."""
        cert = x509.load_pem_x509_certificate(certificate.encode())
        if cert.public_key() != self.key.public_key():
            raise IdentityError("the director returned a certificate for another key")
        if ca is not None and not self.ca_path.exists():
            x509.load_pem_x509_certificate(ca.encode())
            write_private(self.ca_path, ca, mode=0o644)
        write_private(self.cert_path, certificate, mode=0o644)

    def needs_renewal(self, now: dt.datetime | None = None) -> bool:
        """True without a certificate or when less than a third of its life is left."""
        cert = self.certificate()
        if cert is None:
            return True
        now = now or dt.datetime.now(dt.UTC)
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        return cert.not_valid_after_utc - now < life / 3

    def expired(self) -> bool:
        cert = self.certificate()
        return cert is None or cert.not_valid_after_utc <= dt.datetime.now(dt.UTC)
