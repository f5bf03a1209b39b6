# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PRIVATE to the collection: the engine connection's exec path for a cached token, on the standard library.

Ansible forks a worker per task; importing the SDK's HTTP stack (requests, urllib3) and its login code (PyJWT,
cryptography) costs each worker 0.2-0.3 s, more than a warm module run. After a worker has connected the full way
(SDK, login), it leaves a record in ``<DXFLOW_HOME>/cache/engine-fast/`` (0600): the engine's address, its pinned
certificate fingerprint and the token, keyed by the connection's option values. Later workers with the same options
send their ``exec`` with ``http.client`` to that address, accept only that certificate, and fall back to the SDK on
anything unexpected (no record, token about to expire, another certificate, 401, an error reply, a key file that no
longer reads or holds another key than the one the token was issued to).
Only HTTPS connections pinned to a certificate fingerprint with a key login take this path: direct ones, and those
through a director that went through its persistent bridge (``dxflow.client.persist``): the record then names the
bridge's Unix socket, and a worker opens its stream there (no aiohttp, no director request); a bridge that is gone
(idle, killed) sends the worker to the SDK, which starts a new one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import ssl
import time
from urllib.parse import urlsplit

MARGIN = 60.0  # seconds of token life a record must still have
SKIPPED_OPTIONS = ("command_timeout", "module_runner")


def _home():
    # Same rule as dxflow.common.config.dxflow_home (not imported: it loads the config layer).
    return os.path.expanduser(os.environ.get("DXFLOW_HOME") or os.path.join(os.path.expanduser("~"), ".dxflow"))


def record_path(options):
    """The record file for these connection option values (and the DXFLOW_* environment)."""
    ident = dict((k, v) for k, v in options.items() if k not in SKIPPED_OPTIONS)
    ident["env"] = dict((k, v) for k, v in os.environ.items() if k.startswith("DXFLOW_"))
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return os.path.join(_home(), "cache", "engine-fast", digest + ".json")


def save_record(options, settings, token, exec_path, expires, capabilities=(), socket_path=None, server=None):
    """Remember how this connection reached its engine (only for the pinned, key-login case, direct or through the
    persistent hub bridge at ``socket_path`` to ``server``) and the engine's ``capabilities`` when the caller knows
    them (``user``: it honours an exec's ``user``)."""
    if not token or not settings.fingerprint or settings.auth_mode != "key":
        return
    if settings.route != ("director" if socket_path else "direct"):
        return
    if not settings.address.startswith("https://") or settings.insecure:
        return
    from pathlib import Path

    from dxflow.common.crypto import normalize_fingerprint
    from dxflow.common.files import ensure_private_dir, write_private

    key_digest = _key_digest(settings.key)
    if key_digest is None:
        return
    path = Path(record_path(options))
    ensure_private_dir(path.parent)
    record = dict(address=settings.address, fingerprint=normalize_fingerprint(settings.fingerprint), token=token,
                  exec_path=exec_path, expires=expires, timeout=settings.timeout, key=settings.key,
                  key_digest=key_digest, key_id=_claim(token, "identity"), capabilities=list(capabilities),
                  socket=socket_path, server=server)
    write_private(path, json.dumps(record))


def _key_digest(path):
    """SHA-256 of the key file's bytes (the record is good only for the key its token was issued to), or None."""
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except (OSError, TypeError):
        return None


def _claim(token, name):
    """One claim of a JWT (not verified: the engine does that), or None."""
    try:
        return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))[name]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def token_expiry(token):
    """The ``exp`` claim of a JWT (not verified: the engine does that), or None."""
    try:
        return float(_claim(token, "exp"))
    except (TypeError, ValueError):
        return None


def load_record(options):
    """The record for these options when its token is still good, else None."""
    try:
        with open(record_path(options)) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or (record.get("expires") or 0) - MARGIN < time.time():
        return None
    if not record.get("key_digest") or _key_digest(record.get("key")) != record["key_digest"]:
        return None  # the key is gone, unreadable or replaced: the SDK path decides (and says why)
    return record


def forget_record(options):
    with contextlib.suppress(OSError):
        os.unlink(record_path(options))


class ExecLost(Exception):
    """The request went out and no complete answer came back: the command may have run, so it is not retried."""


class FastExec:
    """``exec`` over one pinned HTTPS connection with a cached token. ``run`` answers None to mean "use the SDK",
    only when the engine cannot have started the command (no connection, another certificate, 401, 4xx)."""

    def __init__(self, record):
        self.record = record
        self.conn = None

    def _connect(self):
        url = urlsplit(self.record["address"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the certificate is checked by its fingerprint right below
        timeout = self.record.get("timeout") or 30
        conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context, timeout=timeout)
        if self.record.get("socket"):  # through the persistent hub bridge: TLS runs over its Unix socket
            try:
                from dxflow.client.persist import StreamRefused, open_stream
            except ImportError:
                return None
            try:
                raw = open_stream(self.record["socket"], self.record.get("server") or "", timeout)
            except StreamRefused:
                return None  # the SDK asks the director and says why
            conn.sock = context.wrap_socket(raw)
        else:
            conn.connect()
        der = conn.sock.getpeercert(binary_form=True)
        if hashlib.sha256(der or b"").hexdigest() != self.record["fingerprint"]:
            conn.close()
            return None
        return conn

    def run(self, body, timeout=None):
        """(rc, stdout, stderr, timed_out) of the exec ``body``, None when the SDK should do it; ExecLost."""
        try:
            from dxflow.protocol.chunks import parse_body
        except ImportError:  # the collection's bundled SDK is put on sys.path by the SDK path only
            return None
        if self.conn is None:
            try:
                self.conn = self._connect()
            except (OSError, http.client.HTTPException):
                self.conn = None
            if self.conn is None:
                return None
        self.conn.sock.settimeout((timeout + 30) if timeout else None)
        try:
            self.conn.request("POST", self.record["exec_path"], body=json.dumps(body), headers={
                "Authorization": "Bearer " + self.record["token"],
                "Content-Type": "application/json",
                "Accept": "application/json",
            })
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ExecLost("the connection to %s broke during the command: %s" % (self.record["address"], exc)) from exc
        if 400 <= response.status < 500:
            return None  # refused before running (401 expired/revoked token, 403, 400): the SDK says why
        try:
            reply = parse_body(data)
            entity = reply.entities[0]
            if response.status != 200 or reply.code >= 400:
                raise ValueError(reply.message)
            return (int(entity["rc"]), base64.b64decode(entity.get("stdout", "")),
                    base64.b64decode(entity.get("stderr", "")), bool(entity.get("timed_out", False)))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ExecLost("unexpected answer %s from %s: %s" % (response.status, self.record["address"], exc)) from exc

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
