"""The edge proxy and the person at the browser, for the docs test of docs/edge.md.

The fixture starts a real engine that checks edge JWTs against a JWKS made here (``--edge-jwks``); the proxy's part
(its login, then its JWT in the ``CF_Authorization`` cookie) is a JWT signed with the matching key. ``$BROWSER`` is
an executable that ``webbrowser.open`` runs with the login URL: headless Chromium with that cookie opens the relay
page, checks that it shows the code in the URL, and clicks "Yes, connect the CLI".
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.harness.docs_blocks import ROOT

AUDIENCE = "dxflow-docs-edge"
KEY_ENV = "DOCS_EDGE_KEY"


def write_edge_files(folder: Path) -> tuple[Path, Path, Path]:
    """(the proxy's signing key, the JWKS the engine trusts, the $BROWSER executable) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = folder / "edge-proxy.key"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "docs-edge", "alg": "RS256", "use": "sig"}]}))
    browser = folder / "browser"
    browser.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.harness.docs_edge import browse\nsys.exit(browse(sys.argv[1]))\n"
    )
    browser.chmod(0o700)
    return key_path, jwks, browser


def proxy_jwt(key_path: Path) -> str:
    """What the edge proxy puts on every request it forwards after its own login."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    now = int(time.time())
    claims = {"aud": AUDIENCE, "sub": "alice@example.com", "iat": now, "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "docs-edge"})  # type: ignore[arg-type]


def browse(url: str) -> int:
    """The person at the browser: open the relay page through the "proxy", check the code, connect the CLI."""
    from playwright.sync_api import expect, sync_playwright

    from tests.harness.browser import ARGS, CHROMIUM, new_context

    parts = urlsplit(url)
    code = parse_qs(parts.query)["code"][0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = new_context(browser)
            token = proxy_jwt(Path(os.environ[KEY_ENV]))
            context.add_cookies(
                [{"name": "CF_Authorization", "value": token, "url": f"{parts.scheme}://{parts.netloc}"}]
            )
            page = context.new_page()
            page.goto(url)
            expect(page.locator("#code")).to_have_text(code)
            page.click("#connect")
            expect(page.locator("body")).to_contain_text("The dxflow CLI is connected")
        finally:
            browser.close()
    return 0
