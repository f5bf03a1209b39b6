"""Bad input and security: CSRs, body sizes, client certificates, revocation, agent API, policy."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dxflow.common.ca import csr_to_b64, make_csr
from tests.harness.director_harness import (
    DXFLOW,
    Agent,
    Director,
    FakeAgentIdentity,
    cleanup,
    curl,
    dxflow,
    env,
    wait_until,
)
from tests.timeouts import scaled


@pytest.fixture(scope="module")
def admin(director: Director) -> requests.Session:
    return director.admin()


def _register(director: Director, body: object, **kw: object) -> requests.Response:
    return requests.post(
        f"{director.url}/v1/agent/register", verify=str(director.ca), timeout=scaled(10), json=body, **kw
    )


def _update(director: Director, cert: tuple[str, str] | None) -> requests.Response:
    body = {"sessions": [], "stats": {}, "tags": []}
    return requests.post(
        f"{director.url}/v1/agent/update", json=body, cert=cert, verify=str(director.ca), timeout=scaled(10)
    )


def test_csr_whose_cn_does_not_match_the_guid_is_401(director: Director, tmp_path: Path) -> None:
    ident = FakeAgentIdentity(tmp_path)
    other = "dxflow-agent-00000000-0000-4000-8000-000000000000"
    r = _register(director, {"guid": ident.guid, "hostname": "h", "csr": ident.csr(cn=other)})
    assert r.status_code == 401 and "does not match" in r.json()["error"]


@pytest.mark.parametrize(
    "csr",
    ["not base64 at all!", base64.b64encode(b"garbage DER").decode(), "", 42],
    ids=["not-base64", "garbage-der", "empty", "number"],
)
def test_garbage_csr_is_400(director: Director, tmp_path: Path, csr: object) -> None:
    ident = FakeAgentIdentity(tmp_path)
    r = _register(director, {"guid": ident.guid, "hostname": "h", "csr": csr})
    assert r.status_code == 400 and r.json()["error"]


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 1024)],
    ids=["p384", "rsa1024"],
)
def test_wrong_key_type_is_400(director: Director, tmp_path: Path, key: object) -> None:
    ident = FakeAgentIdentity(tmp_path)
    csr = csr_to_b64(make_csr(key, f"dxflow-agent-{ident.guid}"))  # type: ignore[arg-type]
    r = _register(director, {"guid": ident.guid, "hostname": "h", "csr": csr})
    assert r.status_code == 400 and "key" in r.json()["error"]


def test_dcvix_names_and_ed25519_keys_are_accepted(director: Director, admin: requests.Session) -> None:
    import uuid

    from cryptography.hazmat.primitives.asymmetric import ed25519

    guid = str(uuid.uuid4())
    csr = csr_to_b64(make_csr(ed25519.Ed25519PrivateKey.generate(), f"dcvix-agent-{guid}"))
    assert _register(director, {"guid": guid, "hostname": "legacy", "csr": csr}).json() == {"error": "pending approval"}
    assert admin.post(f"{director.url}/v1/admin/agents/{guid}/approve").status_code == 200
    r = _register(director, {"guid": guid, "hostname": "legacy", "csr": csr})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"certificate", "ca", "agentId", "renewalIntervalSeconds"}
    assert body["agentId"] == guid and body["ca"] == director.ca.read_text()


def test_bad_bodies_are_4xx_never_500(director: Director) -> None:
    assert _register(director, None, data=b"{not json").status_code == 400
    assert _register(director, ["a list"]).status_code == 400
    assert _register(director, {"guid": "not-a-uuid", "csr": "x"}).status_code == 400
    big = {"guid": "x", "csr": "A" * 100_000}
    assert _register(director, big).status_code == 413


def test_someone_else_cannot_take_an_approved_guid(director: Director, admin: requests.Session, tmp_path: Path) -> None:
    owner = FakeAgentIdentity(tmp_path / "a")
    owner.enroll(director, admin)
    thief = FakeAgentIdentity(tmp_path / "b")
    thief.guid = owner.guid
    r = thief.register(director)
    assert r.status_code == 401 and "another key" in r.json()["error"]


def test_update_and_renew_without_client_cert_are_refused(director: Director, tmp_path: Path) -> None:
    r = _update(director, None)
    assert r.status_code == 401 and r.json() == {"error": "client certificate required"}
    csr = FakeAgentIdentity(tmp_path).csr()
    r = requests.post(f"{director.url}/v1/agent/renew", json={"csr": csr}, verify=str(director.ca), timeout=scaled(10))
    assert r.status_code == 401 and r.json() == {"error": "client certificate required"}


def test_update_with_a_cert_from_another_ca_is_refused(director: Director, tmp_path: Path) -> None:
    stranger = Director(tmp_path / "other").start()
    try:
        ident = FakeAgentIdentity(tmp_path / "ids")
        ident.enroll(stranger, stranger.admin())
    finally:
        stranger.stop()
    # TLS 1.3: the client may see the refusal as an SSL error or as the server closing the connection.
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        _update(director, ident.cert)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.post(
            f"{director.url}/v1/agent/renew",
            json={"csr": ident.csr()},
            cert=ident.cert,
            verify=str(director.ca),
            timeout=scaled(10),
        )
    status, _ = curl(
        "--cert",
        ident.cert[0],
        "--key",
        ident.cert[1],
        "--cacert",
        str(director.ca),
        "-X",
        "POST",
        "-d",
        "{}",
        f"{director.url}/v1/agent/update",
    )
    assert status == 0  # TLS handshake refused


def test_revoked_cert_is_refused_at_once_everywhere(
    director: Director, admin: requests.Session, tmp_path: Path
) -> None:
    ident = FakeAgentIdentity(tmp_path)
    ident.enroll(director, admin)
    assert _update(director, ident.cert).status_code == 200
    assert admin.post(f"{director.url}/v1/admin/agents/{ident.guid}/revoke").json()["state"] == "revoked"
    assert _update(director, ident.cert).status_code == 403
    renew = requests.post(
        f"{director.url}/v1/agent/renew",
        json={"csr": ident.csr()},
        cert=ident.cert,
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert renew.status_code == 403
    again = ident.register(director)
    assert again.status_code == 401 and "revoked" in again.json()["error"]  # 401 like dcvix


def test_renew_returns_a_fresh_certificate(director: Director, admin: requests.Session, tmp_path: Path) -> None:
    ident = FakeAgentIdentity(tmp_path)
    ident.enroll(director, admin)
    r = requests.post(
        f"{director.url}/v1/agent/renew",
        json={"csr": ident.csr()},
        cert=ident.cert,
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert r.status_code == 200 and r.json()["certificate"] != ident.cert_path.read_text()
    wrong = requests.post(
        f"{director.url}/v1/agent/renew",
        json={"csr": FakeAgentIdentity(tmp_path).csr()},
        cert=ident.cert,
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert wrong.status_code == 401  # a CSR for another GUID


def test_admin_api_needs_an_admin(director: Director, tmp_path: Path) -> None:
    anon = requests.get(f"{director.url}/v1/admin/agents", verify=str(director.ca), timeout=scaled(10))
    assert anon.status_code == 401
    bad = requests.post(
        f"{director.url}/v1/admin/login",
        json={"userID": "admin", "password": "nope"},
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert bad.status_code == 401 and "dcvix_session" not in bad.cookies
    forged = requests.get(
        f"{director.url}/v1/servers",
        cookies={"dcvix_session": "v4.local.forged"},
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert forged.status_code == 401
    # An agent certificate is not an admin credential.
    ident = FakeAgentIdentity(tmp_path)
    ident.enroll(director, director.admin())
    r = requests.get(f"{director.url}/v1/servers", cert=ident.cert, verify=str(director.ca), timeout=scaled(10))
    assert r.status_code == 401


def test_login_cookie_is_httponly_secure_strict(director: Director) -> None:
    r = requests.post(
        f"{director.url}/v1/admin/login",
        json={"userID": "admin", "password": "correct horse battery"},
        verify=str(director.ca),
        timeout=scaled(10),
    )
    header = r.headers["Set-Cookie"]
    assert header.startswith("dcvix_session=v4.local.")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Max-Age=7200"):
        assert flag in header
    assert "correct horse" not in director.log() and "v4.local" not in director.log()


def test_revoked_admin_client_cert_is_refused(director: Director) -> None:
    bundle = director.client_bundle("ci")
    cert = (str(bundle / "tls.crt"), str(bundle / "tls.key"))
    assert requests.get(f"{director.url}/v1/servers", cert=cert, verify=str(bundle / "ca.crt"), timeout=scaled(10)).ok
    from cryptography import x509

    from dxflow.common.ca import serial_hex
    from dxflow.director.db import Database

    serial = serial_hex(x509.load_pem_x509_certificate((bundle / "tls.crt").read_bytes()))
    db = Database(f"sqlite:///{director.data_dir / 'director.db'}")
    assert db.revoke_client_cert(serial)
    db.close()
    wait_until(
        lambda: (
            requests.get(
                f"{director.url}/v1/servers", cert=cert, verify=str(director.ca), timeout=scaled(10)
            ).status_code
            == 403
        ),
        5,
        what="revoked admin certificate refused",
    )


def test_agent_api_accepts_only_the_director(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", registration_token="tok").start()
    agent = Agent(tmp_path / "srv9", director, registration_token="tok").start()
    try:
        admin = director.admin()
        wait_until(lambda: admin.get(f"{director.url}/v1/servers").json(), 20, what="server")
        url = f"https://127.0.0.1:{agent.port}/v1/sessions"
        ca = str(director.ca)
        # No client certificate: the TLS handshake fails.
        assert curl("--cacert", ca, "-k", url)[0] == 0
        # An admin client certificate from the same CA is not the director.
        bundle = director.client_bundle("intruder")
        status, body = curl("-k", "--cert", str(bundle / "tls.crt"), "--key", str(bundle / "tls.key"), url)
        assert status == 403 and "only the director" in body
        # Another agent's certificate neither.
        other = FakeAgentIdentity(tmp_path / "ids")
        other.register(director, registrationToken="tok")
        status, _ = curl("-k", "--cert", other.cert[0], "--key", other.cert[1], url)
        assert status == 403
        # The director itself gets through (its own server certificate is its client certificate).
        d_cert, d_key = str(director.data_dir / "server.crt"), str(director.data_dir / "server.key")
        status, body = curl("-k", "--cert", d_cert, "--key", d_key, url)
        assert status == 200 and json.loads(body) == []
    finally:
        cleanup(agent, director)


def test_user_policy_limits_servers_and_sessions(tmp_path: Path) -> None:
    from tests.harness.director_harness import USER_PASSWORD, password_hash

    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "users.json").write_text(json.dumps([{"id": "alice", "workstations": ["srv-a"], "pools": ["gpu"]}]))
    (policy / "pools.json").write_text(json.dumps([{"id": "gpu", "workstations": ["srv-b"]}]))
    users = {"admin": password_hash("correct horse battery"), "alice": password_hash(USER_PASSWORD)}
    director = Director(
        tmp_path / "d", policy_dir=str(policy), registration_token="tok", auth={"type": "local", "users": users}
    ).start()
    agents = [
        Agent(tmp_path / name, director, registration_token="tok").start() for name in ("srv-a", "srv-b", "srv-c")
    ]
    try:
        admin = director.admin()
        wait_until(lambda: len(admin.get(f"{director.url}/v1/servers").json()) == 3, 30, what="three servers")
        alice = requests.Session()
        alice.trust_env = False
        alice.verify = str(director.ca)
        assert alice.post(f"{director.url}/v1/user/login", json={"userID": "alice", "password": USER_PASSWORD}).ok
        assert (
            alice.post(
                f"{director.url}/v1/admin/login", json={"userID": "alice", "password": USER_PASSWORD}
            ).status_code
            == 403
        )
        names = alice.get(f"{director.url}/v1/user/servers").json()["servers"]
        assert names == ["srv-a", "srv-b"]
        denied = alice.post(f"{director.url}/v1/user/sessions", json={"serverId": "srv-c"})
        assert denied.status_code == 403 and "not in your policy" in denied.json()["error"]
        config = {"parameters": {"display.target-fps": "30"}}
        assert alice.post(f"{director.url}/v1/user/servers/srv-c/config", json=config).status_code == 403
        applied = alice.post(f"{director.url}/v1/user/servers/srv-a/config", json=config)
        assert applied.status_code == 200 and applied.json()["parameters"] == config["parameters"]
        token = alice.get(f"{director.url}/v1/user/connectiontoken", params={"sessionId": "x", "serverId": "srv-a"})
        verified = requests.post(
            f"{director.url}/v1/user/authtokenverify",
            data={"authenticationToken": token.json()["token"]},
            verify=str(director.ca),
            timeout=scaled(10),
        )
        assert verified.text == '<auth result="yes"><username>alice</username></auth>'
        forged = requests.post(
            f"{director.url}/v1/user/authtokenverify",
            data={"authenticationToken": "v4.local.x"},
            verify=str(director.ca),
            timeout=scaled(10),
        )
        assert 'result="no"' in forged.text
        assert alice.get(f"{director.url}/v1/servers").status_code == 403
        # SIGHUP reloads; a corrupt file keeps the last good policy and says why in the log.
        (policy / "users.json").write_text("[{broken")
        director.proc.send_signal(1)
        wait_until(lambda: "keeping the last good one" in director.log(), 5, what="reload error logged")
        assert alice.get(f"{director.url}/v1/user/servers").json()["servers"] == ["srv-a", "srv-b"]
        (policy / "users.json").write_text(json.dumps([{"id": "alice", "workstations": ["ALLOW_CUSTOM"]}]))
        director.proc.send_signal(1)
        wait_until(
            lambda: len(alice.get(f"{director.url}/v1/user/servers", params={"detail": "1"}).json()) == 3,
            5,
            what="reloaded policy",
        )
        # The agent's engine backend refuses (engine down), proving the call went through the policy.
        r = alice.post(f"{director.url}/v1/user/sessions", json={"serverId": "srv-c"})
        assert r.status_code == 502 and "engine" in r.json()["error"]
    finally:
        cleanup(*agents, director)


def test_ca_key_open_to_others_refuses_to_start(tmp_path: Path) -> None:
    director = Director(tmp_path / "d").start()
    director.stop()
    (director.data_dir / "ca.key").chmod(0o644)
    proc = dxflow("director", "up", "--config", str(director.config_path))
    assert proc.returncode != 0
    assert "ca.key is readable by group or others" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_port_in_use_is_a_one_line_error(director: Director) -> None:
    proc = dxflow("director", "up", "--daemon", "--config", str(director.config_path), home=director.workdir)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: director already running with pid {director.proc.pid} (data dir {director.data_dir})"
    ]
    other = director.workdir / "other.yaml"
    other.write_text(f"host: 127.0.0.1\nport: {director.port}\ndata_dir: {director.workdir / 'other'}\n")
    proc = dxflow("director", "up", "--daemon", "--config", str(other), home=director.workdir)
    assert proc.returncode == 1 and "cannot listen on 127.0.0.1" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "d.yaml"
    cfg.write_text("port: 8445\nbogus_key: 1\n")
    proc = dxflow("director", "up", "--config", str(cfg))
    assert proc.returncode != 0 and "bogus_key" in proc.stderr
    cfg.write_text("port: 8445\n")
    proc = subprocess.run(
        [*DXFLOW, "director", "status", "--config", str(cfg)],
        env={**env(), "DXFLOW_DIRECTOR_PORT": "not-a-port"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "'port' must be a number" in proc.stderr


def test_logins_are_rate_limited_per_address(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", login_rate=1).start()
    try:
        codes = [
            requests.post(
                f"{director.url}/v1/admin/login",
                json={"userID": "admin", "password": "guess"},
                verify=str(director.ca),
                timeout=scaled(10),
            ).status_code
            for _ in range(10)
        ]
        assert codes[:4] == [401] * 4 and 429 in codes
    finally:
        director.stop()


def test_large_and_chunked_bodies_are_read_whole(director: Director, admin: requests.Session, tmp_path: Path) -> None:
    ident = FakeAgentIdentity(tmp_path, hostname="big-host")
    ident.enroll(director, admin)
    sessions = [{"id": f"s{i}", "owner": "u" * 50, "type": "console", "pad": "x" * 400} for i in range(1500)]
    body = json.dumps({"sessions": sessions, "stats": {"hostname": "big-host"}, "tags": []}).encode()
    assert 512 * 1024 < len(body) < 1024 * 1024

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 7000):
            yield body[i : i + 7000]

    r = requests.post(
        f"{director.url}/v1/agent/update",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        cert=ident.cert,
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert r.status_code == 200, r.text
    listed = wait_until(
        lambda: [s for s in admin.get(f"{director.url}/v1/servers").json() if s["hostname"] == "big-host"], 5
    )
    assert len(listed[0]["sessions"]) == 1500
    too_big = json.dumps({"sessions": [], "stats": {"pad": "x" * (1024 * 1024)}}).encode()
    r = requests.post(
        f"{director.url}/v1/agent/update",
        data=iter([too_big]),
        headers={"Content-Type": "application/json"},
        cert=ident.cert,
        verify=str(director.ca),
        timeout=scaled(10),
    )
    assert r.status_code == 413
