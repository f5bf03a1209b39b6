"""Edge mode: the engine and the director verify the edge JWT (local JWKS) before anything else, and the CLI's
browser login (seed 002) runs end to end with headless Chromium as the browser.

The edge proxy itself (Cloudflare Access) is not run: the test plays its part by signing JWTs with its own key and
putting the ``CF_Authorization`` cookie into the browser, as the proxy does after its login.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import expect, sync_playwright

from tests.harness.browser import ARGS, CHROMIUM, new_context
from tests.harness.director_harness import DXFLOW, Director, Engine, env, wait_until
from tests.timeouts import scaled

AUDIENCE = "dxflow-edge-test"
ISSUER = "https://edge.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def edge_jwt(key: rsa.RSAPrivateKey = KEY, **claims: object) -> str:
    now = int(time.time())
    body = {"aud": AUDIENCE, "iss": ISSUER, "sub": "alice@example.com", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "edge-1"})


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    path = tmp_path_factory.mktemp("edge") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "edge-1", "alg": "RS256", "use": "sig"}]}))
    return path


@pytest.fixture(scope="module")
def edge_director(jwks: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Director]:
    d = Director(
        tmp_path_factory.mktemp("edge-director"), edge_jwks=str(jwks), edge_audience=AUDIENCE, edge_issuer=ISSUER
    )
    d.write_config()
    d.start(wait=False)
    token = edge_jwt()
    wait_until(
        lambda: (
            d.ca.exists()
            and requests.get(f"{d.url}/v1/health", headers={"Cf-Access-Jwt-Assertion": token}, verify=str(d.ca)).ok
        ),
        30,
        what="edge director",
    )
    yield d
    d.stop()


def test_director_checks_the_edge_jwt_first(edge_director: Director) -> None:
    url, ca = f"{edge_director.url}/v1/health", str(edge_director.ca)
    assert requests.get(url, headers={"Cf-Access-Jwt-Assertion": edge_jwt()}, verify=ca).ok
    assert requests.get(url, cookies={"CF_Authorization": edge_jwt()}, verify=ca).ok
    for bad in (
        None,
        edge_jwt(OTHER_KEY),
        edge_jwt(aud="someone-else"),
        edge_jwt(iss="https://evil.test"),
        edge_jwt(exp=int(time.time()) - 120),
        edge_jwt() + "x",
        "not-a-jwt",
    ):
        headers = {"Cf-Access-Jwt-Assertion": bad} if bad else {}
        r = requests.get(url, headers=headers, verify=ca)
        assert r.status_code == 401, (bad, r.text)
    # Before anything else: even the login endpoint is not reached without it.
    r = requests.post(f"{edge_director.url}/v1/admin/login", json={"userID": "admin", "password": "x"}, verify=ca)
    assert r.status_code == 401 and r.json() == {"error": "edge authentication required"}


def test_director_relay_page_escapes_and_validates(edge_director: Director) -> None:
    url, ca = f"{edge_director.url}/auth/connect", str(edge_director.ca)
    headers = {"Cf-Access-Jwt-Assertion": edge_jwt()}
    page = requests.get(url, params={"port": 45678, "code": "ABCD-EF23"}, headers=headers, verify=ca)
    assert page.ok and "ABCD-EF23" in page.text and 'action="http://127.0.0.1:45678/callback"' in page.text
    assert "form-action http://127.0.0.1:45678" in page.headers["Content-Security-Policy"]
    for params in ({"port": 80, "code": "ABCD-EF23"}, {"port": 45678, "code": "<script>"}, {}):
        assert requests.get(url, params=params, headers=headers, verify=ca).status_code == 400


def run_cli(*args: str, home: Path) -> subprocess.Popen:
    return subprocess.Popen([*DXFLOW, *args], env=env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def login_url(proc: subprocess.Popen) -> tuple[str, str]:
    line = proc.stderr.readline()  # type: ignore[union-attr]
    found = re.search(r"Open (\S+) in your browser and check that it shows the code (\S+)", line)
    assert found, line + proc.stderr.read()  # type: ignore[union-attr]
    return found.group(1), found.group(2)


def test_cli_browser_login_against_an_edge_engine(jwks: Path, tmp_path: Path) -> None:
    engine = Engine(tmp_path)  # a free port and a data dir
    # The harness's Engine starts without edge options: start this one with them through the environment.
    edge_env = {"DXFLOW_ENGINE_EDGE_JWKS": str(jwks), "DXFLOW_ENGINE_EDGE_AUDIENCE": AUDIENCE}
    proc_engine = subprocess.Popen(
        [*DXFLOW, "boot", "up", "--port", str(engine.port), "--data-dir", str(engine.data_dir)],
        env={**env(), **edge_env},
        stdout=engine.log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    engine.proc = proc_engine
    home = tmp_path / "home"
    address = f"https://127.0.0.1:{engine.port}"
    token = edge_jwt()
    try:
        tls = engine.data_dir / "tls.crt"
        wait_until(
            lambda: (
                tls.exists()
                and requests.get(
                    f"{address}/api/engine/healthcheck/", headers={"Cf-Access-Jwt-Assertion": token}, verify=str(tls)
                ).ok
            ),
            30,
            what="edge engine",
        )
        assert requests.get(f"{address}/api/engine/healthcheck/", verify=str(tls)).status_code == 401

        # A login nobody completes: the profile is rolled back.
        failed = run_cli(
            "profile", "add", "late", "--address", address, "--edge", "--no-browser", "--timeout", "1", home=home
        )
        assert failed.wait(scaled(30)) != 0
        assert "no browser login within 1 s" in failed.stderr.read()  # type: ignore[union-attr]
        assert not (home / "late_config.yaml").exists() and not (home / "late").exists()

        cli = run_cli(
            "profile", "add", "edge1", "--address", address, "--edge", "--ca", str(tls), "--no-browser", home=home
        )
        url, code = login_url(cli)
        port = int(re.search(r"port=(\d+)", url).group(1))  # type: ignore[union-attr]
        callback = f"http://127.0.0.1:{port}/callback"
        foreign = requests.post(callback, data={"token": "x", "code": code}, headers={"Origin": "https://evil.test"})
        assert foreign.status_code == 403
        wrong = requests.post(callback, data={"token": "x", "code": "AAAA-BBBB"}, headers={"Origin": address})
        assert wrong.status_code == 400

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = new_context(browser)
            # What the edge proxy's own login leaves in the browser:
            context.add_cookies([{"name": "CF_Authorization", "value": token, "url": address}])
            page = context.new_page()
            page.goto(url)
            expect(page.locator("#code")).to_have_text(code)
            page.click("#connect")
            expect(page.locator("body")).to_contain_text("The dxflow CLI is connected")
            page.screenshot(path=str(tmp_path / "edge-connected.png"))
            browser.close()
        assert cli.wait(scaled(30)) == 0, cli.stderr.read()  # type: ignore[union-attr]
        stored = home / "edge1" / "edge_token"
        assert stored.read_text().strip() == token and stored.stat().st_mode & 0o777 == 0o600
        assert (home / "active_profile").read_text().strip() == "edge1"

        # Every request carries the token now; behind the edge the engine's own key login still applies.
        health = subprocess.run([*DXFLOW, "engine", "healthcheck"], env=env(home), capture_output=True, text=True)
        assert health.returncode == 0, health.stderr
        key = str(engine.data_dir / "engine.key")
        subprocess.run([*DXFLOW, "config", "set", "connection-key", key], env=env(home), check=True, timeout=scaled(60))
        ping = subprocess.run(
            [*DXFLOW, "engine", "ping", "--count", "1"],
            env=env(home),
            capture_output=True,
            text=True,
            timeout=scaled(60),
        )
        assert ping.returncode == 0, ping.stderr

        out = subprocess.run([*DXFLOW, "profile", "logout", "edge1"], env=env(home), capture_output=True, text=True)
        assert out.returncode == 0 and not stored.exists()
        after = subprocess.run([*DXFLOW, "engine", "healthcheck"], env=env(home), capture_output=True, text=True)
        assert after.returncode != 0 and "dxflow profile login edge1" in after.stderr
    finally:
        engine.stop()
