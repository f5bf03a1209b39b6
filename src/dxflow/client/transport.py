"""One keep-alive HTTPS session per target, with CA verification, fingerprint pinning or mTLS.

The seam for tests: ``Transport(settings, adapter=...)`` mounts a requests adapter for every URL, and
``MockTransport(handler)`` is one that answers from ``handler(request)`` with no socket (like httpx's).
"""

from __future__ import annotations

import http
import http.client
import io
import json
import logging
import ssl
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter

from dxflow.client.engine_wire import chunked_reply, stream_error
from dxflow.client.settings import ConnectionSettings
from dxflow.client.tls import is_loopback, server_fingerprint
from dxflow.common.crypto import normalize_fingerprint
from dxflow.protocol.chunks import STREAM_MEDIA_TYPE, Chunked, iter_stream
from dxflow.protocol.errors import ConfigError, TLSVerifyError, TransportError
from dxflow.protocol.names import EDGE_COOKIE, EDGE_HEADER

__all__ = ["MockTransport", "Reply", "Transport", "server_fingerprint"]

log = logging.getLogger(__name__)


class _PinnedAdapter(HTTPAdapter):
    """Accepts exactly the certificate whose SHA-256 fingerprint is pinned (no CA needed); with ``opener``, every
    connection is the socket it opens (the persistent hub bridge) instead of a TCP connection."""

    def __init__(self, fingerprint: str, opener: Callable[[float | None], Any] | None = None, **kwargs: Any) -> None:
        self._fingerprint = normalize_fingerprint(fingerprint)
        self._opener = opener
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        kwargs["cert_reqs"] = ssl.CERT_NONE
        super().init_poolmanager(*args, **kwargs)
        if self._opener is not None:
            from dxflow.client.route import opened_pool

            self.poolmanager.pool_classes_by_scheme = {"https": opened_pool(self._opener)}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, False, cert)
        conn.assert_fingerprint = self._fingerprint


class Transport:
    """HTTP to one server: verification per settings, error mapping, chunked bodies."""

    def __init__(self, settings: ConnectionSettings, adapter: BaseAdapter | None = None) -> None:
        """``adapter`` (a requests adapter such as ``MockTransport``) carries every request instead of sockets."""
        self.settings = settings
        parts = urlsplit(settings.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"connection-address {settings.address!r} must be http(s)://HOST[:PORT]")
        self.base = settings.address
        self.opener: Callable[[float | None], Any] | None = None  # connections through the persistent hub bridge
        if settings.route == "director":
            from dxflow.client.route import through_director

            settings, self.base, self.opener = through_director(settings)  # a bridge to the engine through the hub
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
            self.session.mount(f"{self.base}/", _PinnedAdapter(settings.fingerprint, self.opener))
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
        if adapter is not None:
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
            self.session.adapters.pop(f"{self.base}/", None)

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
        """The chunked body of ``resp``, or the error it carries."""
        return chunked_reply(resp.status_code, resp.content, resp.reason or "", resp.headers, method, path)

    def stream(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Iterator[Any]:
        """Entity payloads of a streamed response, as they arrive."""
        headers = {"Accept": STREAM_MEDIA_TYPE}
        resp = self.send(method, path, token=token, headers=headers, stream=True, **kwargs)
        with resp:
            if resp.status_code >= 400:
                self.parse(resp, method, path)
            try:
                for chunk in iter_stream(resp.iter_lines()):
                    error = stream_error(chunk, method, path)
                    if error is not None:
                        raise error
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


@dataclass
class _Message:
    """What requests' cookie handling reads from an http.client response: its headers."""

    msg: http.client.HTTPMessage

    def isclosed(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class Reply:
    """A canned answer of ``MockTransport``: a status, a body (``content`` bytes/str, or ``json``) and headers."""

    status: int = 200
    content: bytes | str = b""
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""


class MockTransport(BaseAdapter):
    """A requests adapter that answers every request with ``handler(request)`` (a ``Reply`` or a
    ``requests.Response``): no sockets, for tests. Each request handled is kept in ``requests``."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], Reply | requests.Response]) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[requests.PreparedRequest] = []
        self._build = HTTPAdapter()

    def send(self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        answer = self.handler(request)
        if isinstance(answer, requests.Response):
            return answer
        content = answer.content.encode() if isinstance(answer.content, str) else answer.content
        headers = dict(answer.headers)
        if answer.json is not None:
            content = json.dumps(answer.json).encode()
            headers.setdefault("Content-Type", "application/json")
        message = http.client.HTTPMessage()
        for name, value in headers.items():
            message[name] = value
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(content),
            headers=headers,
            status=answer.status,
            reason=answer.reason or http.HTTPStatus(answer.status).phrase,
            preload_content=False,
            decode_content=False,
            original_response=_Message(message),  # type: ignore[arg-type]
        )
        return self._build.build_response(request, raw)

    def close(self) -> None:
        """Nothing to release."""
