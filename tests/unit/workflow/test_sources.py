"""The ``?source=URL`` policy: off by default, allow-listed hosts only, no internal address after resolution,
the connection pinned to the checked address, no redirects, a size cap (in-process servers, an injected resolver)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dxflow.common.config import WorkflowSources
from dxflow.engine.workflows.sources import check_source, fetch_source
from dxflow.protocol.errors import ApiError, ConfigError


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]

    return resolve


def refused(policy: WorkflowSources, url: str, table: dict[str, list[str]] | None = None) -> ApiError:
    with pytest.raises(ApiError) as info:
        asyncio.run(check_source(policy, url, resolver(table or {})))
    return info.value


PUBLIC = {"git.example.org": ["93.184.216.7"], "raw.cdn.example.org": ["151.101.1.9"]}


def test_off_by_default() -> None:
    error = refused(WorkflowSources(), "https://git.example.org/wf.yml", PUBLIC)
    assert error.status_code == 403 and "disabled" in error.message


def test_enabled_needs_an_allow_list() -> None:
    with pytest.raises(ConfigError, match="allow"):
        WorkflowSources(enabled=True)
    with pytest.raises(ConfigError, match="schemes"):
        WorkflowSources(enabled=True, allow=("x",), schemes=("file",))


def test_allowed_hosts_by_name_wildcard_and_network() -> None:
    policy = WorkflowSources(enabled=True, allow=("git.example.org", "*.cdn.example.org", "192.0.2.0/24"))
    table = {**PUBLIC, "mirror.example.net": ["192.0.2.5"]}
    for url, address in [
        ("https://git.example.org/wf.yml", "93.184.216.7"),
        ("https://GIT.example.org./wf.yml", "93.184.216.7"),
        ("https://raw.cdn.example.org/a/wf.yml", "151.101.1.9"),
        ("https://mirror.example.net/wf.yml", "192.0.2.5"),
        ("https://192.0.2.44:8443/wf.yml", "192.0.2.44"),
    ]:
        assert asyncio.run(check_source(policy, url, resolver(table)))[1] == address, url
    other = refused(policy, "https://evil.example.com/wf.yml", {"evil.example.com": ["93.184.216.99"]})
    assert other.status_code == 403 and "allow-list" in other.message
    assert (
        refused(
            policy, "https://cdn.example.org.evil.com/x", {"cdn.example.org.evil.com": ["93.184.216.5"]}
        ).status_code
        == 403
    )
    assert refused(policy, "http://git.example.org/wf.yml", PUBLIC).status_code == 403, "https only by default"
    for bad in ("git.example.org/wf.yml", "https:///wf.yml", "file:///etc/passwd", "https://[::1/x"):
        assert refused(policy, bad).status_code in (400, 403), bad
    assert refused(policy, "https://git.example.org/wf.yml", {}).status_code == 400, "a name that does not resolve"


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # cloud metadata
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # shared (carrier-grade NAT)
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
    ],
)
def test_internal_addresses_are_refused_after_resolution(address: str) -> None:
    by_name = WorkflowSources(enabled=True, allow=("git.example.org",))
    error = refused(by_name, "https://git.example.org/wf.yml", {"git.example.org": ["93.184.216.7", address]})
    assert error.status_code == 403 and "refused unless the allow-list names" in error.message, error.message
    literal = f"[{address}]" if ":" in address else address
    assert refused(by_name, f"https://{literal}/wf.yml").status_code == 403


def test_an_allow_listed_internal_network_is_allowed() -> None:
    policy = WorkflowSources(enabled=True, allow=("127.0.0.1", "10.0.0.0/8"), schemes=("http", "https"))
    assert asyncio.run(check_source(policy, "http://127.0.0.1:8000/wf.yml"))[1] == "127.0.0.1"
    assert asyncio.run(check_source(policy, "http://build.lan/wf.yml", resolver({"build.lan": ["10.9.9.9"]})))[1] == (
        "10.9.9.9"
    )
    # a listed network does not open the others: 127.0.0.2 is loopback too, but not listed
    assert refused(policy, "http://127.0.0.2/wf.yml").status_code == 403
    assert refused(policy, "http://both.lan/", {"both.lan": ["10.0.0.1", "169.254.169.254"]}).status_code == 403


def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], scenario: Callable[[int], Awaitable[None]]):
    async def run() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        async with TestServer(app, host="127.0.0.1") as server:
            await scenario(server.port)

    asyncio.run(run())


def test_fetch_connects_to_the_checked_address_only() -> None:
    """A name resolving to 127.0.0.1 for the check is fetched from 127.0.0.1, whatever DNS says later."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.host)
        return web.Response(text="services:\n  a:\n    command: [true]\n")

    async def scenario(port: int) -> None:
        policy = WorkflowSources(enabled=True, allow=("127.0.0.1/32",), schemes=("http",))
        text = await fetch_source(policy, f"http://wf.test:{port}/wf.yml", resolver({"wf.test": ["127.0.0.1"]}))
        assert text.startswith("services:")
        assert hits == [f"wf.test:{port}"], "the Host header keeps the name; the socket went to the checked address"

    serve(handler, scenario)


def test_fetch_refuses_redirects_oversize_and_errors() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/redirect":
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if request.path == "/big":
            return web.Response(body=b"x" * 5000)
        if request.path == "/chunked-big":
            resp = web.StreamResponse()
            await resp.prepare(request)
            for _ in range(10):
                await resp.write(b"y" * 1000)
            return resp
        if request.path == "/binary":
            return web.Response(body=b"\xff\xfe")
        return web.Response(status=404)

    async def scenario(port: int) -> None:
        policy = WorkflowSources(enabled=True, allow=("127.0.0.1",), schemes=("http",), max_bytes=4096)
        base = f"http://127.0.0.1:{port}"
        for path, status, words in [
            ("/redirect", 400, "redirect (HTTP 302 to http://169.254.169.254"),
            ("/big", 413, "larger than 4096"),
            ("/chunked-big", 413, "larger than 4096"),
            ("/binary", 400, "not UTF-8"),
            ("/missing", 400, "HTTP 404"),
        ]:
            with pytest.raises(ApiError) as info:
                await fetch_source(policy, base + path)
            assert (info.value.status_code, words in info.value.message) == (status, True), info.value.message

    serve(handler, scenario)
