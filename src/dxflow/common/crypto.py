"""Key and certificate helpers: RSA keys for the engine and clients, self-signed TLS, fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dxflow.common.files import is_private, read_key_file, write_private
from dxflow.protocol.errors import KeyFileError

__all__ = [
    "KeyFileError",
    "cert_fingerprint",
    "ensure_key_pair",
    "ensure_tls",
    "generate_rsa_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "normalize_fingerprint",
    "private_pem",
    "public_pem",
    "san_extension",
    "self_signed_cert",
    "sign_nonce",
]


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PEM of a private key: PKCS#1 (``BEGIN RSA PRIVATE KEY``, what browser clients of the public
    dxflow API read) for RSA, PKCS#8 otherwise. ``load_private_key`` reads both."""
    form = serialization.PrivateFormat.TraditionalOpenSSL if isinstance(key, rsa.RSAPrivateKey) else None
    return key.private_bytes(
        serialization.Encoding.PEM, form or serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    """PEM (SubjectPublicKeyInfo) of the public half of ``key``."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path | str, *, check_mode: bool = True) -> rsa.RSAPrivateKey:
    """Load an RSA private key from a PEM file (PKCS#1 or PKCS#8), refusing open permissions and OpenSSH keys."""
    path, data = read_key_file(path)
    if check_mode and not is_private(path):
        raise KeyFileError(f"private key {path} is readable by group or others; run: chmod 600 {path}")
    if b"BEGIN OPENSSH PRIVATE KEY" in data:
        raise KeyFileError(
            f"private key {path} is in OpenSSH format; convert it to PEM with: ssh-keygen -p -m PEM -f {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"private key {path} is not an unencrypted PEM key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"private key {path} is not an RSA key")
    return key


def load_public_key(data: bytes) -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1) or OpenSSH ``ssh-rsa`` text."""
    data = data.strip()
    try:
        if data.startswith(b"ssh-rsa "):
            key = serialization.load_ssh_public_key(data)
        elif b"PRIVATE KEY" in data:
            raise ValueError("this is a private key; give the public key")
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, IndexError) as exc:
        raise KeyFileError(f"not a usable RSA public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError("not an RSA public key")
    if key.key_size < 2048:
        raise KeyFileError(f"RSA key of {key.key_size} bits is too small; use 2048 bits or more")
    return key


def key_id(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """Stable short identity of a key: SHA-256 of its DER SubjectPublicKeyInfo, hex, 16 chars."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def sign_nonce(key: rsa.RSAPrivateKey, nonce: str) -> bytes:
    """RSA PKCS#1 v1.5 + SHA-256 signature of the nonce's UTF-8 bytes (what `openssl dgst -sha256 -sign` makes)."""
    return key.sign(nonce.encode(), padding.PKCS1v15(), hashes.SHA256())


def self_signed_cert(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    hosts: list[str] | None = None,
    days: int = 825,
) -> x509.Certificate:
    """A self-signed server certificate with SANs for ``hosts`` (hostname, localhost and loopback by default)."""
    names = hosts or [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"]
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(san_extension(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def san_extension(names: list[str]) -> x509.SubjectAlternativeName:
    """SubjectAlternativeName with an IP entry for each address and a DNS entry for each other name."""
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def cert_fingerprint(cert: x509.Certificate | bytes) -> str:
    """Lowercase hex SHA-256 of a certificate's DER encoding (no colons)."""
    der = cert.public_bytes(serialization.Encoding.DER) if isinstance(cert, x509.Certificate) else cert
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(value: str) -> str:
    """Accept ``AA:BB:..``, ``sha256:aabb..`` or plain hex; return plain lowercase hex."""
    value = value.strip().lower()
    if value.startswith("sha256:"):
        value = value[7:]
    return value.replace(":", "")


def ensure_key_pair(key_path: Path, pub_path: Path) -> rsa.RSAPrivateKey:
    """Load the RSA key at ``key_path`` or create it (0600) with its public half beside it."""
    if key_path.exists():
        key = load_private_key(key_path)
    else:
        key = generate_rsa_key()
        write_private(key_path, private_pem(key))
    if not pub_path.exists():
        write_private(pub_path, public_pem(key), mode=0o644)
    return key


def ensure_tls(cert_path: Path, key_path: Path, common_name: str, hosts: list[str] | None = None) -> str:
    """Create a self-signed TLS pair at the paths unless present; return the cert fingerprint."""
    if not cert_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self_signed_cert(key, common_name, hosts=hosts)
        write_private(key_path, private_pem(key))
        write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert_fingerprint(cert)
