"""One keep-alive HTTPS session per target, with CA verification, fingerprint pinning or mTLS."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import warnings
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from dxflow.client.settings import ConnectionSettings
from dxflow.common.crypto import cert_fingerprint, normalize_fingerprint
from dxflow.protocol.chunks import STREAM_MEDIA_TYPE, Chunked, iter_stream, parse_body
from dxflow.protocol.errors import ConfigError, TLSVerifyError, TransportError, api_error
from dxflow.protocol.names import EDGE_COOKIE, EDGE_HEADER

__all__ = ["Transport", "server_fingerprint"]

log = logging.getLogger(__name__)


class _PinnedAdapter(HTTPAdapter):
    """Accepts exactly the certificate whose SHA-256 fingerprint is pinned (no CA needed)."""

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self._fingerprint = normalize_fingerprint(fingerprint)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        kwargs["cert_reqs"] = ssl.CERT_NONE
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, False, cert)
        conn.assert_fingerprint = self._fingerprint


def server_fingerprint(address: str, timeout: float = 5.0) -> str | None:
    """SHA-256 fingerprint of the certificate a server presents (unverified), or None."""
    parts = urlsplit(address)
    try:
        pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 443), timeout=timeout)
    except (OSError, ssl.SSLError):
        return None
    return cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


class Transport:
    """HTTP to one server: verification per settings, error mapping, chunked bodies."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        parts = urlsplit(settings.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"connection-address {settings.address!r} must be http(s)://HOST[:PORT]")
        self.base = settings.address
        if settings.route == "director":
            from dxflow.client.route import through_director

            settings, self.base = through_director(settings)  # a local bridge to the engine through the hub
            self.settings = settings
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "dxflow-sdk"
        if parts.scheme == "http":
            if not is_loopback(parts.hostname):
                log.warning("plaintext HTTP to %s: use only behind a trusted proxy", parts.hostname)
        elif settings.insecure:
            log.warning("TLS verification is off for %s (connection-insecure)", settings.address)
            self.session.verify = False
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        elif settings.fingerprint:
            self.session.mount(f"{self.base}/", _PinnedAdapter(settings.fingerprint))
            self.session.verify = False
        elif settings.ca:
            self.session.verify = settings.ca
        self._verify: bool | str = True
        if settings.auth_mode == "mtls":
            bundle = settings.bundle
            if bundle is None:
                raise ConfigError(
                    f"connection-mode mtls needs connection-cert and connection-cert-key or a bundle in "
                    f"{settings.home}/{settings.profile}/mtls/"
                )
            self.session.cert = (bundle[0], bundle[1])
            if bundle[2] and not settings.fingerprint and not settings.insecure:
                self.session.verify = bundle[2]
        if settings.auth_mode == "edge":
            token = settings.edge_token
            if not token:
                raise ConfigError(
                    f"profile {settings.profile!r} uses connection-mode edge but has no edge token; "
                    f"run 'dxflow profile login {settings.profile}'"
                )
            self.session.headers[EDGE_HEADER] = token
            self.session.cookies.set(EDGE_COOKIE, token)
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session-level verify.
        self._verify = self.session.verify

    def close(self) -> None:
        self.session.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; connection and TLS failures become TransportError / TLSVerifyError."""
        url = f"{self.base}{path}"
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        try:
            return self.session.request(
                method,
                url,
                headers=hdrs,
                stream=stream,
                timeout=timeout or self.settings.timeout,
                **({"verify": self._verify} | kwargs),
            )
        except requests.exceptions.SSLError as exc:
            fingerprint = server_fingerprint(self.base)
            detail = "fingerprint mismatch" if self.settings.fingerprint else _ssl_reason(exc)
            raise TLSVerifyError(self.base, fingerprint, detail) from None
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"cannot reach {self.base}: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise TransportError(f"{method} {url} timed out after {timeout or self.settings.timeout} s") from None

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Chunked:
        """A whole chunked response; ApiError subclasses for error statuses."""
        resp = self.send(method, path, token=token, **kwargs)
        return self.parse(resp, method, path)

    def parse(self, resp: requests.Response, method: str, path: str) -> Chunked:
        try:
            body = parse_body(resp.content)
        except (ValueError, UnicodeDecodeError):
            message = resp.headers.get("x-error-message") or resp.reason or "unexpected response"
            if resp.status_code >= 400:
                raise api_error(resp.status_code, message, method, path) from None
            raise TransportError(f"{method} {path}: response is not the dxflow chunked format") from None
        if resp.status_code >= 400 or body.code >= 400:
            raise api_error(resp.status_code if resp.status_code >= 400 else body.code, body.message, method, path)
        return body

    def stream(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Iterator[Any]:
        """Entity payloads of a streamed response, as they arrive."""
        headers = {"Accept": STREAM_MEDIA_TYPE}
        resp = self.send(method, path, token=token, headers=headers, stream=True, **kwargs)
        with resp:
            if resp.status_code >= 400:
                self.parse(resp, method, path)
            try:
                for chunk in iter_stream(resp.iter_lines()):
                    if chunk.get("kind") == "status" and int(chunk["payload"].get("code", 200)) >= 400:
                        raise api_error(chunk["payload"]["code"], chunk["payload"].get("message", ""), method, path)
                    if chunk.get("kind") == "entity":
                        yield chunk["payload"]
            except requests.exceptions.RequestException as exc:
                raise TransportError(f"stream from {self.base}{path} broke: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset"):
        if marker in text:
            return marker.lower()
    return text.split(":")[-1].strip(" )'\"") or type(exc).__name__


def _ssl_reason(exc: Exception) -> str:
    text = str(exc)
    if "self-signed" in text or "self signed" in text:
        return "self-signed certificate"
    if "Hostname mismatch" in text or "doesn't match" in text:
        return "hostname mismatch"
    return "certificate verify failed"
