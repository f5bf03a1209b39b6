"""The director's certificate authority and the CSR helpers agents use.

The CA is ECDSA P-256 with a 10-year life. It signs the director's server certificate, agents' certificates
(from their CSRs) and admin client certificates. Roles are carried in the subject's OU: ``director``,
``agent`` or ``admin``. Every issued certificate has serverAuth + clientAuth.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dxflow.common.crypto import cert_fingerprint, private_pem, san_extension
from dxflow.common.files import is_private, write_private

__all__ = [
    "AGENT_CERT_DAYS",
    "AGENT_CN_PREFIXES",
    "CaError",
    "CertificateAuthority",
    "CsrError",
    "agent_guid_from_cn",
    "cert_names",
    "cert_role",
    "csr_from_b64",
    "csr_to_b64",
    "describe_server_cert",
    "ensure_server_cert",
    "generate_agent_key",
    "load_ca",
    "make_csr",
    "peer_identity",
    "registration_proof",
    "registration_token_ok",
    "server_names",
]

log = logging.getLogger(__name__)

CA_DAYS = 3650
AGENT_CERT_DAYS = 14
CLIENT_CERT_DAYS = 365
SERVER_CERT_DAYS = 825
AGENT_CN_PREFIXES = ("dxflow-agent-", "dcvix-agent-")
ROLES = ("director", "agent", "admin")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_CSR_BYTES = 8192

SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class CaError(Exception):
    """The CA files cannot be used (open permissions, unreadable, mismatched)."""


class CsrError(ValueError):
    """A CSR that cannot be signed: not a CSR, bad signature, wrong key type, wrong name."""


@dataclass(frozen=True)
class PeerIdentity:
    """Who is on the other end of an mTLS connection, from the certificate alone."""

    serial: str
    common_name: str
    role: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dxflow"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def serial_hex(cert: x509.Certificate) -> str:
    """The certificate's serial number as lowercase hex (how the director stores it)."""
    return format(cert.serial_number, "x")


class CertificateAuthority:
    """A loaded CA key and certificate that issues leaf certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.fingerprint = cert_fingerprint(cert)

    def __repr__(self) -> str:
        return f"CertificateAuthority(fingerprint={self.fingerprint!r})"

    def _issue(
        self,
        subject: x509.Name,
        public_key: object,
        days: float,
        sans: list[str],
    ) -> x509.Certificate:
        now = _now()
        # Backdated for clock skew, by at most a tenth of the lifetime (so "a third left" stays meaningful).
        backdate = dt.timedelta(seconds=min(300.0, days * 86400 / 10))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - backdate)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(san_extension(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def sign_agent_csr(
        self, csr: x509.CertificateSigningRequest, guid: str, days: float = AGENT_CERT_DAYS
    ) -> x509.Certificate:
        """Sign an agent CSR after checking its key type and that its CN names ``guid``."""
        check_csr(csr, guid)
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return self._issue(_name(str(cn), "agent"), csr.public_key(), days, [str(cn)])

    def issue_server_cert(self, key: ec.EllipticCurvePrivateKey, hosts: list[str] | None = None) -> x509.Certificate:
        """The director's server (and outbound client) certificate with SANs for this host plus ``hosts``."""
        return self._issue(_name(socket.getfqdn(), "director"), key.public_key(), SERVER_CERT_DAYS, server_names(hosts))

    def issue_client_cert(
        self, key: ec.EllipticCurvePrivateKey, name: str, role: str, days: float = CLIENT_CERT_DAYS
    ) -> x509.Certificate:
        """A client certificate for automation; the role goes in the OU."""
        if role != "admin":
            raise CaError(f"unknown role {role!r}; the only client role is 'admin'")
        if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", name):
            raise CaError(f"client name {name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
        return self._issue(_name(name, role), key.public_key(), days, [])


def _write_ca(data_dir: Path) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"dxflow-director-ca-{socket.gethostname()}", "ca")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(data_dir / "ca.key", private_pem(key))
    write_private(data_dir / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("created a new CA in %s", data_dir)
    return CertificateAuthority(key, cert)


def load_ca(data_dir: Path, *, create: bool = True) -> CertificateAuthority:
    """Load ``ca.key``/``ca.crt`` from ``data_dir`` (creating them when absent and ``create``).

    Raises CaError when ``ca.key`` is readable by group or others, or the pair does not match.
    """
    key_path, cert_path = data_dir / "ca.key", data_dir / "ca.crt"
    if not key_path.exists():
        if not create:
            raise CaError(f"no CA in {data_dir}; start the director once to create it")
        return _write_ca(data_dir)
    if not is_private(key_path):
        raise CaError(f"{key_path} is readable by group or others; run: chmod 600 {key_path}")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CaError(f"cannot load the CA from {data_dir}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CaError(f"{key_path} is not the ECDSA key of {cert_path}")
    return CertificateAuthority(key, cert)


def server_names(extra: Iterable[str] | None = None) -> list[str]:
    """The server certificate's SANs: this host's name and FQDN, loopback, then ``extra`` (config)."""
    names = [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1", *(extra or [])]
    return [_san_text(n) for n in dict.fromkeys(n for n in names if n)]


def _san_text(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def cert_names(cert: x509.Certificate) -> set[str]:
    """A certificate's DNS and IP SANs as text."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    return {*dns, *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def describe_server_cert(path: Path) -> str:
    """One log line: the server certificate's names, serial and issue time (a re-issue shows as a new serial)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    issued = cert.not_valid_before_utc.isoformat(timespec="seconds")
    return f"server certificate for {', '.join(sorted(cert_names(cert)))} (serial {serial_hex(cert)}, issued {issued})"


def ensure_server_cert(ca: CertificateAuthority, data_dir: Path, extra_names: Iterable[str] = ()) -> tuple[Path, Path]:
    """``server.crt``/``server.key`` signed by ``ca``; re-issued when missing, foreign, near expiry or when its
    names differ from this host's plus ``extra_names`` (the ``server_cert_names`` config key)."""
    cert_path, key_path = data_dir / "server.crt", data_dir / "server.key"
    wanted = server_names(extra_names)
    reason = "none yet"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        have = cert_names(cert)
        if cert.not_valid_after_utc - _now() <= dt.timedelta(days=30):
            reason = "near expiry"
        elif cert.issuer != ca.cert.subject or not _signed_by(cert, ca.cert):
            reason = "not signed by this CA"
        elif have != set(wanted):
            reason = f"names changed (added {sorted(set(wanted) - have)}, removed {sorted(have - set(wanted))})"
        else:
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue_server_cert(key, list(extra_names))
    write_private(key_path, private_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("issued the server certificate (%s) for %s", reason, ", ".join(wanted))
    return cert_path, key_path


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True


# --- CSR helpers (agent side and director side) -------------------------------------------------


def generate_agent_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 key for an agent."""
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: SigningKey, common_name: str) -> x509.CertificateSigningRequest:
    """A CSR for ``common_name`` signed with ``key``."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def csr_to_b64(csr: x509.CertificateSigningRequest) -> str:
    """Standard base64 of the CSR's DER (the wire format)."""
    return base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()


def csr_from_b64(value: object) -> x509.CertificateSigningRequest:
    """Parse a standard-base64 DER CSR (PEM is accepted too) and check its signature."""
    if not isinstance(value, str) or not value:
        raise CsrError("csr must be a non-empty string (standard base64 of the DER CSR)")
    if len(value) > MAX_CSR_BYTES:
        raise CsrError("csr is too large")
    try:
        if value.lstrip().startswith("-----BEGIN"):
            csr = x509.load_pem_x509_csr(value.encode())
        else:
            csr = x509.load_der_x509_csr(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise CsrError("csr is not a valid base64 DER certificate signing request") from None
    if not csr.is_signature_valid:
        raise CsrError("csr signature is invalid")
    return csr


def check_csr(csr: x509.CertificateSigningRequest, guid: str) -> None:
    """Refuse key types other than Ed25519, ECDSA P-256 and RSA >= 2048, and CNs that do not name ``guid``."""
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CsrError(f"csr key curve {key.curve.name} is not allowed; use P-256")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CsrError(f"csr RSA key of {key.key_size} bits is too small; use 2048 bits or more")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise CsrError("csr key type is not allowed; use Ed25519, ECDSA P-256 or RSA >= 2048")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    if agent_guid_from_cn(cn) != guid.lower():
        raise CsrMismatchError(f"csr common name {cn!r} does not match the agent guid")


class CsrMismatchError(CsrError):
    """The CSR's CN names another agent than the one asking."""


PROOF_PREFIX = "hmac-sha256:"


def registration_proof(token: str, csr_b64: str) -> str:
    """What an agent sends instead of its registration token while the director is not verified yet: an HMAC of
    the CSR keyed by the token, so an impostor on the unverified connection learns neither the token nor anything
    it can use (the proof only approves this CSR's key)."""
    return PROOF_PREFIX + hmac.new(token.encode(), csr_b64.encode(), hashlib.sha256).hexdigest()


def registration_token_ok(expected: str | None, presented: str | None, csr_b64: str) -> bool:
    """True for the registration token itself (dcvix agents) or a proof of it over ``csr_b64`` (dxflow agents)."""
    if not expected or not presented:
        return False
    wanted = registration_proof(expected, csr_b64) if presented.startswith(PROOF_PREFIX) else expected
    return hmac.compare_digest(wanted.encode(), presented.encode())


def agent_guid_from_cn(cn: str) -> str | None:
    """The GUID in ``dxflow-agent-<guid>`` / ``dcvix-agent-<guid>``, lower-cased, else None."""
    for prefix in AGENT_CN_PREFIXES:
        if cn.startswith(prefix) and GUID_RE.match(cn[len(prefix) :]):
            return cn[len(prefix) :].lower()
    return None


def valid_guid(value: object) -> bool:
    """True for a textual UUID."""
    return isinstance(value, str) and bool(GUID_RE.match(value))


def cert_role(cert: x509.Certificate) -> str:
    """The role (OU) of a certificate issued by the director CA, or '' when absent."""
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return str(ous[0].value) if ous else ""


def peer_identity(der: bytes | None) -> PeerIdentity | None:
    """Identity from a verified peer certificate's DER (``ssl_object.getpeercert(binary_form=True)``)."""
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return PeerIdentity(
        serial=serial_hex(cert),
        common_name=str(cns[0].value) if cns else "",
        role=cert_role(cert),
    )
