"""The sync SDK over ``MockTransport``: token lifecycle, error mapping, chunked and streamed bodies, the director
client's error replies. No sockets, no daemons."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from dxflow.client import MockTransport, Reply
from dxflow.client.director import DirectorClient
from dxflow.client.engine import EngineClient
from dxflow.client.session import Session
from dxflow.client.settings import ConnectionSettings
from dxflow.common.crypto import generate_rsa_key, load_private_key, private_pem
from dxflow.common.files import write_private
from dxflow.protocol.chunks import encode_body, encode_chunk, entity_chunk, status_chunk
from dxflow.protocol.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    Conflict,
    NotFound,
    PendingApproval,
    PermissionDenied,
    ProtocolError,
    ServerError,
    TooManyRequests,
)

ENGINE = "https://engine.test:8080"
DIRECTOR = "https://director.test:8445"
Handler = Callable[[requests.PreparedRequest], Reply]


def token(sub: str = "admin", ttl: float = 3600) -> str:
    """A token the client's quick inspect accepts (it does not check the signature)."""
    return jwt.encode({"sub": sub, "exp": int(time.time() + ttl)}, "not-checked-here-" * 2, algorithm="HS256")


def chunked(status: int, message: str = "OK", *entities: object) -> Reply:
    return Reply(status, encode_body(status, message, entities))


def engine_settings(key: Path | None = None, tok: str | None = None) -> ConnectionSettings:
    return ConnectionSettings(
        profile="unit", profile_exists=False, address=ENGINE, key=str(key) if key else None, token=tok, mode="key"
    )


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "client.key"
    write_private(path, private_pem(generate_rsa_key()))
    return path


def session(handler: Handler, settings: ConnectionSettings) -> tuple[Session, MockTransport]:
    mock = MockTransport(handler)
    return Session(settings, adapter=mock), mock


def test_a_401_logs_in_once_with_the_key_and_retries(key_file: Path) -> None:
    stale, fresh = token("stale"), token("fresh")
    nonce = "nonce-123"

    def engine(request: requests.PreparedRequest) -> Reply:
        path = request.path_url
        if path == "/api/auth/challenge/":
            return chunked(200, "OK", {"nonce": nonce, "identity": "id-1"})
        if path == "/api/auth/verify/":
            body = json.loads(request.body or b"{}")
            load_private_key(key_file).public_key().verify(
                base64.b64decode(body["signature"]), nonce.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            assert body["identity"] == "id-1"
            return chunked(200, "OK", {"token": fresh, "expires_at": "later"})
        if request.headers.get("Authorization") == f"Bearer {fresh}":
            return chunked(200, "OK", {"cpu": 2})
        return chunked(401, "token expired")

    client, mock = session(engine, engine_settings(key_file, stale))
    assert EngineClient(client).stat("cpu") == {"cpu": 2}
    assert client.tokens.handshakes == 1
    assert [r.path_url for r in mock.requests] == [
        "/api/engine/stat/last/cpu/",
        "/api/auth/challenge/",
        "/api/auth/verify/",
        "/api/engine/stat/last/cpu/",
    ]
    # The new token is kept: the next call needs no handshake.
    assert EngineClient(client).stat("cpu") == {"cpu": 2}
    assert client.tokens.handshakes == 1


def test_a_second_401_is_not_retried_again(key_file: Path) -> None:
    def engine(request: requests.PreparedRequest) -> Reply:
        if request.path_url == "/api/auth/challenge/":
            return chunked(200, "OK", {"nonce": "n", "identity": "i"})
        if request.path_url == "/api/auth/verify/":
            return chunked(200, "OK", {"token": token()})
        return chunked(401, "key disabled")

    client, mock = session(engine, engine_settings(key_file, token()))
    with pytest.raises(AuthenticationError, match="key disabled"):
        EngineClient(client).keys()
    assert client.tokens.handshakes == 1
    assert len(mock.requests) == 4


def test_without_a_key_a_401_is_final() -> None:
    client, mock = session(lambda r: chunked(401, "invalid token"), engine_settings(tok=token()))
    with pytest.raises(AuthenticationError):
        EngineClient(client).inspect()
    assert len(mock.requests) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (429, TooManyRequests),
        (500, ServerError),
        (503, ServerError),
        (418, ApiError),
    ],
)
def test_error_statuses_map_to_the_error_tree(status: int, error: type[ApiError]) -> None:
    client, _ = session(lambda r: chunked(status, f"refused with {status}"), engine_settings(tok=token()))
    with pytest.raises(error) as info:
        EngineClient(client).keys()
    assert type(info.value) is error
    assert (info.value.status_code, info.value.message) == (status, f"refused with {status}")
    assert info.value.url == "/api/engine/key/"


def test_error_without_a_chunked_body_uses_the_error_header() -> None:
    reply = Reply(413, b"", headers={"x-error-message": "upload over the limit"})
    client, _ = session(lambda r: reply, engine_settings(tok=token()))
    with pytest.raises(ApiError, match="upload over the limit") as info:
        EngineClient(client).keys()
    assert info.value.status_code == 413


def test_status_chunk_error_inside_a_200() -> None:
    client, _ = session(lambda r: Reply(200, encode_body(404, "no key")), engine_settings(tok=token()))
    with pytest.raises(NotFound, match="no key"):
        EngineClient(client).keys()


def test_chunked_bodies_total_and_entities() -> None:
    body = encode_body(200, "OK", [{"name": "a"}, {"name": "b"}], total=2)
    client, _ = session(lambda r: Reply(200, body), engine_settings(tok=token()))
    result = client.call("GET", "/api/key/list/")
    assert (result.code, result.total, result.entities) == (200, 2, [{"name": "a"}, {"name": "b"}])


def test_a_success_that_is_not_chunked_is_a_protocol_error() -> None:
    client, _ = session(lambda r: Reply(200, "<html>proxy login</html>"), engine_settings(tok=token()))
    with pytest.raises(ProtocolError, match="chunked"):
        EngineClient(client).keys()


def test_streamed_entities_arrive_in_order_and_a_late_error_raises() -> None:
    lines = [b"[", encode_chunk(status_chunk(200, "OK"))]
    lines += [b"," + encode_chunk(entity_chunk(1000 + i)) for i in range(3)]
    lines += [b"," + encode_chunk(status_chunk(500, "engine stopping")), b"]"]
    client, mock = session(lambda r: Reply(200, b"\n".join(lines)), engine_settings(tok=token()))
    seen: list[object] = []
    with pytest.raises(ServerError, match="engine stopping"):
        for entity in EngineClient(client).ping(count=3):
            seen.append(entity)
    assert seen == [{"seq": 1, "time": 1000}, {"seq": 2, "time": 1001}, {"seq": 3, "time": 1002}]
    assert mock.requests[0].headers["Accept"] == "application/stream+json"


# --- director client -------------------------------------------------------------------------------------------


def director(handler: Handler, tok: str | None = "director-token") -> tuple[DirectorClient, MockTransport]:
    settings = ConnectionSettings(profile="d", profile_exists=False, address=DIRECTOR, token=tok, mode="token")
    mock = MockTransport(handler)
    return DirectorClient(settings, adapter=mock), mock


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (400, {"error": "serverId is required"}, BadRequest, "serverId is required"),
        (401, {"error": "log in first"}, AuthenticationError, "log in first"),
        (403, {"error": "pending approval"}, PendingApproval, "pending approval"),
        (403, {"error": "admins only"}, PermissionDenied, "admins only"),
        (404, {"error": "no server srv9"}, NotFound, "no server srv9"),
        (502, {"error": "agent srv1 unreachable"}, ServerError, "agent srv1 unreachable"),
        (500, "not json", ServerError, "Internal Server Error"),
    ],
)
def test_director_error_replies(status: int, body: object, error: type[ApiError], message: str) -> None:
    reply = Reply(status, json=body) if isinstance(body, dict) else Reply(status, body)  # type: ignore[arg-type]
    client, _ = director(lambda r: reply)
    with pytest.raises(error) as info:
        client.agents()
    assert type(info.value) is error
    assert (info.value.status_code, info.value.message, info.value.method) == (status, message, "GET")


def test_director_calls_send_the_token_and_the_dcvix_body() -> None:
    def answer(request: requests.PreparedRequest) -> Reply:
        assert request.headers["Authorization"] == "Bearer director-token"
        return Reply(201, json={"sessionId": "s1", "sessionID": "s1", "serverId": "g", "hostname": "srv1"})

    client, mock = director(answer)
    assert client.create_session("srv1", user="alice")["sessionID"] == "s1"
    sent = mock.requests[0]
    assert (sent.method, sent.path_url) == ("POST", "/v1/sessions")
    assert json.loads(sent.body or b"") == {"serverId": "srv1", "userId": "alice", "sessionType": "console"}


def test_director_login_keeps_the_session_cookie() -> None:
    reply = Reply(200, json={"user": "root"}, headers={"Set-Cookie": "dcvix_session=v4.local.abc; Path=/; Secure"})
    client, _ = director(lambda r: reply, tok=None)
    client.login("root", "secret")
    assert client.session_token() == "v4.local.abc"


def test_director_success_that_is_not_json_is_a_protocol_error() -> None:
    client, _ = director(lambda r: Reply(200, "<html>"))
    with pytest.raises(ProtocolError):
        client.health()
