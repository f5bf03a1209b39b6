"""The seed's curl examples, run with real curl against a real director and agent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.director_harness import (
    ADMIN_PASSWORD,
    Agent,
    Director,
    Engine,
    FakeAgentIdentity,
    cleanup,
    curl,
    wait_until,
)

SEED_UPDATE = """{
      "sessions": [],
      "stats": {
        "hostname": "server.domain.com",
        "free_memory": 54545088512,
        "total_memory": 66996871168,
        "cores": 8,
        "cpu_usage": 1.16,
        "load1": 0.11,
        "load5": 0.13,
        "load15": 0.15
      },
      "tags": ["tag1", "tag2"]
    }"""


def test_seed_curl_examples(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", registration_token="tok").start()
    engine = Engine(tmp_path).start()
    agent = Agent(tmp_path / "ws1", director, registration_token="tok", engine_port=engine.port).start()
    try:
        work = tmp_path / "curl"
        work.mkdir()
        ca = str(director.ca)  # the seed's ca.pem
        jar = str(work / "cookies.txt")
        base = director.url

        # Admin Login
        status, body = curl(
            "--cacert",
            ca,
            "--cookie-jar",
            jar,
            "-X",
            "POST",
            f"{base}/v1/admin/login",
            "-d",
            '{"userID": "admin", "password": "' + ADMIN_PASSWORD + '"}',
        )
        assert status == 200 and json.loads(body)["admin"] is True
        assert "dcvix_session" in Path(jar).read_text()

        # Agent Update with the seed's exact body, from an agent certificate.
        ident = FakeAgentIdentity(work, hostname="server.domain.com")
        assert ident.register(director, registrationToken="tok").status_code == 200
        status, body = curl(
            "--cert",
            ident.cert[0],
            "--key",
            ident.cert[1],
            "--cacert",
            ca,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            SEED_UPDATE,
            f"{base}/v1/agent/update",
        )
        assert status == 200, body

        def servers() -> dict:
            code, text = curl("--cacert", ca, "--cookie", jar, f"{base}/v1/servers")
            assert code == 200
            return {s["hostname"]: s for s in json.loads(text)}

        listed = wait_until(lambda: "server.domain.com" in servers() and "ws1" in servers() and servers(), 20)
        seed_server = listed["server.domain.com"]
        assert seed_server["tags"] == ["tag1", "tag2"] and seed_server["stats"]["cores"] == 8
        wait_until(lambda: servers()["ws1"]["engine"]["healthy"], 20, what="healthy engine")

        # A session to list and close (created through the real agent).
        status, body = curl(
            "--cacert",
            ca,
            "--cookie",
            jar,
            "-X",
            "POST",
            f"{base}/v1/sessions",
            "-d",
            '{"serverId": "ws1", "userId": "alice", "sessionId": "autosession"}',
        )
        assert status == 200 and json.loads(body)["sessionID"] == "autosession"

        # List Sessions
        status, body = curl("--cacert", ca, "--cookie", jar, f"{base}/v1/sessions")
        assert status == 200 and [s["id"] for s in json.loads(body)] == ["autosession"]

        # DCV Gateway Session Resolution
        status, body = curl(
            "--noproxy",
            "*",
            "--cacert",
            ca,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"sessionId": "autosession", "transport": "XXXX", "clientIpAddress": "127.0.0.1"}',
            f"{base}/resolveSession",
        )
        assert status == 200 and json.loads(body)["DcvServerEndpoint"] == "127.0.0.1"

        # Close Session
        status, body = curl("--cacert", ca, "--cookie", jar, "-X", "DELETE", f"{base}/v1/sessions/autosession")
        assert status == 200 and json.loads(body)["closed"] is True
        status, body = curl("--cacert", ca, "--cookie", jar, f"{base}/v1/sessions")
        assert json.loads(body) == []
        status, _ = curl("--cacert", ca, "--cookie", jar, "-X", "DELETE", f"{base}/v1/sessions/autosession")
        assert status == 404

        # Logout clears the cookie.
        status, _ = curl("--cacert", ca, "--cookie", jar, "--cookie-jar", jar, "-X", "POST", f"{base}/v1/logout")
        assert status == 200
        status, _ = curl("--cacert", ca, "--cookie", jar, f"{base}/v1/sessions")
        assert status == 401
    finally:
        cleanup(agent, engine, director)
