"""Edge login (seed 002): the browser relays the edge proxy's token to a one-shot localhost callback.

``EdgeLogin.start()`` binds ``127.0.0.1:<free port>`` and returns the URL to open
(``<address>/auth/connect?port=P&code=C``). The server's relay page shows the confirmation code and, when the
person confirms, POSTs ``token`` and ``code`` to ``/callback``. The callback accepts only a POST whose ``Origin``
is the server's own and whose code matches; ``wait()`` returns the token or raises after ``timeout`` seconds.
"""

from __future__ import annotations

import secrets
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from dxflow.common.files import ensure_private_dir, write_private
from dxflow.protocol.errors import ConfigError, DxflowError

__all__ = ["EDGE_TOKEN_FILE", "EdgeLogin", "EdgeLoginError", "delete_edge_token", "read_edge_token", "save_edge_token"]

EDGE_TOKEN_FILE = "edge_token"
LOGIN_TIMEOUT = 120.0
MAX_BODY = 64 * 1024
_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"


class EdgeLoginError(DxflowError):
    """The browser login did not complete (timeout, refused)."""


def origin_of(address: str) -> str:
    parts = urlsplit(address)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


class EdgeLogin:
    """One browser login against ``address``."""

    def __init__(self, address: str, timeout: float = LOGIN_TIMEOUT) -> None:
        self.address = address.rstrip("/")
        self.origin = origin_of(self.address)
        self.timeout = timeout
        self.code = new_code()
        self._token: str | None = None
        self._done = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Listen on a free loopback port; the URL the browser must open."""
        login = self

        class Callback(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/callback":
                    return self._answer(404, "not found")
                if self.headers.get("Origin") != login.origin:
                    return self._answer(403, "this callback accepts only the server's relay page")
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    return self._answer(413, "too large")
                form = parse_qs(self.rfile.read(length).decode(errors="replace"))
                token, code = form.get("token", [""])[0], form.get("code", [""])[0]
                if not secrets.compare_digest(code, login.code) or not token:
                    return self._answer(400, "the confirmation code does not match")
                login._token = token
                login._done.set()
                return self._answer(200, "The dxflow CLI is connected. You can close this window.")

            def do_GET(self) -> None:
                self._answer(405, "use the relay page")

            def _answer(self, status: int, text: str) -> None:
                body = f"<!doctype html><meta charset=utf-8><title>dxflow</title><p>{text}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        port = self._server.server_address[1]
        return f"{self.address}/auth/connect?{urlencode({'port': port, 'code': self.code})}"

    def wait(self) -> str:
        """The relayed token; EdgeLoginError after the timeout. Always stops the callback server."""
        try:
            if not self._done.wait(self.timeout) or not self._token:
                raise EdgeLoginError(f"no browser login within {self.timeout:.0f} s")
            return self._token
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()


def token_path(home: Path, profile: str) -> Path:
    return home / profile / EDGE_TOKEN_FILE


def save_edge_token(home: Path, profile: str, token: str) -> Path:
    ensure_private_dir(home)
    ensure_private_dir(home / profile)
    path = token_path(home, profile)
    write_private(path, token.strip() + "\n")
    return path


def read_edge_token(home: Path, profile: str) -> str | None:
    try:
        return token_path(home, profile).read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the edge token of profile {profile!r}: {exc}") from None


def delete_edge_token(home: Path, profile: str) -> bool:
    path = token_path(home, profile)
    if path.exists():
        path.unlink()
        return True
    return False
