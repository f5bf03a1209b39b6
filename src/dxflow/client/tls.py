"""TLS pieces shared by the sync SDK and its async twin (no HTTP library): the verification a profile asks for, a
server's certificate fingerprint, loopback detection."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from dxflow.client.settings import ConnectionSettings
from dxflow.common.crypto import cert_fingerprint, normalize_fingerprint

__all__ = ["client_context", "is_loopback", "pinned_fingerprint", "server_fingerprint", "settings_context"]


def server_fingerprint(address: str, timeout: float = 5.0) -> str | None:
    """SHA-256 fingerprint of the certificate the server at ``https://HOST[:PORT]`` presents (unverified), or
    None when it cannot be read."""
    parts = urlsplit(address)
    try:
        pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443), timeout=timeout)
    except (OSError, ssl.SSLError, ValueError):
        return None
    return cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem))


def is_loopback(host: str) -> bool:
    """True for localhost and names or addresses on the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def client_context(
    cafile: str | None, cert: tuple[str, str] | None = None, *, insecure: bool = False
) -> ssl.SSLContext:
    """A client context that verifies against ``cafile`` (else the system CAs), optionally with a client
    certificate ``(cert, key)``; ``insecure`` turns verification off."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if insecure:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def pinned_fingerprint(settings: ConnectionSettings) -> bytes | None:
    """The SHA-256 digest the server certificate must have (``connection-fingerprint``), or None."""
    if settings.fingerprint and not settings.insecure and not settings.address.startswith("http://"):
        return bytes.fromhex(normalize_fingerprint(settings.fingerprint))
    return None


def settings_context(settings: ConnectionSettings) -> ssl.SSLContext | None:
    """The verification ``settings`` ask for as a context (CA, insecure, mTLS bundle); None for plain HTTP.
    A pinned fingerprint is checked by the caller (``pinned_fingerprint``) on top of an unverified context."""
    if settings.address.startswith("http://"):
        return None
    bundle = settings.bundle if settings.auth_mode == "mtls" else None
    cafile = settings.ca or (bundle[2] if bundle else None)
    insecure = settings.insecure or pinned_fingerprint(settings) is not None
    return client_context(cafile, (bundle[0], bundle[1]) if bundle else None, insecure=insecure)
