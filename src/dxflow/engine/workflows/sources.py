"""``POST /api/workflow/?source=URL``: fetch a workflow's compose YAML from a URL without becoming an SSRF hole.

Off by default (403). The engine config's ``workflow_sources`` turns it on with an allow-list::

    workflow_sources:
      enabled: true
      allow: [git.example.org, "*.cdn.example.org", 203.0.113.0/24]   # host names, IP addresses, CIDRs
      schemes: [https]                                                  # the default; add http explicitly
      max_bytes: 1048576
      timeout: 10

A URL is fetched only when its scheme is listed and its host is allowed: by name (exact, or ``*.domain`` for
subdomains) or, for an IP literal or every address the name resolves to, by an IP/CIDR entry. Every resolved address
must also be public: loopback, private, link-local (cloud metadata ``169.254.169.254``), shared, multicast,
unspecified and reserved addresses are refused unless an IP/CIDR entry names them (a test server on 127.0.0.1, say);
a host name entry never lets a name resolve to such an address (DNS rebinding). The connection goes to the address
that was checked (the name is not resolved again), with TLS still verified against the name. Redirects are not
followed (400 naming the target), the body is capped at ``max_bytes`` (413) and the whole fetch at ``timeout``
seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from dxflow.common.config import WorkflowSources
from dxflow.protocol.errors import ApiError

__all__ = ["SOURCES_KEY", "Resolve", "check_source", "fetch_source"]

SOURCES_KEY = web.AppKey("workflow_sources", WorkflowSources)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Awaitable[list[str]]]
"""Host and port to the addresses to try (``getaddrinfo`` by default; tests inject their own)."""


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _networks(policy: WorkflowSources) -> tuple[list[Network], list[str]]:
    """The allow-list split into networks (IPs and CIDRs) and host name patterns (lower case)."""
    networks, names = [], []
    for entry in policy.allow:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            names.append(entry.strip().lower().rstrip("."))
    return networks, names


def _name_allowed(host: str, names: Sequence[str]) -> bool:
    return any(host == n or (n.startswith("*.") and host.endswith(n[1:])) for n in names)


def _address(raw: str) -> Address:
    ip = ipaddress.ip_address(raw.split("%", 1)[0])  # a scoped IPv6 address: its zone does not matter here
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _public(ip: Address) -> bool:
    return ip.is_global and not ip.is_multicast


async def check_source(policy: WorkflowSources, url: str, resolve: Resolve = _getaddrinfo) -> tuple[URL, str]:
    """The parsed ``url`` and the one address to connect to, once the policy allows both; ApiError 400 (not a
    usable URL, the name does not resolve) or 403 (disabled, scheme, host or address refused) otherwise."""
    if not policy.enabled:
        raise ApiError(
            403,
            "workflows from a URL (?source=) are disabled on this engine: send the YAML as the request body, or "
            "enable workflow_sources with an allow-list in the engine config",
        )
    try:
        parsed = URL(url)
        host, port = parsed.host, parsed.port
    except (ValueError, TypeError):
        raise ApiError(400, "source must be an absolute URL") from None
    if not parsed.is_absolute() or not host or port is None:
        raise ApiError(400, "source must be an absolute URL with a host, like https://host/workflow.yml")
    if parsed.scheme not in policy.schemes:
        allowed = ", ".join(policy.schemes) or "none"
        raise ApiError(403, f"source scheme {parsed.scheme!r} is not allowed (allowed: {allowed})")
    host = host.lower().rstrip(".")
    networks, names = _networks(policy)
    try:
        literal: Address | None = _address(host.strip("[]"))
    except ValueError:
        literal = None
    by_name = literal is None and _name_allowed(host, names)
    if literal is None and not by_name and not networks:
        raise ApiError(403, f"source host {host!r} is not in the engine's workflow_sources allow-list")
    try:
        addresses = [str(literal)] if literal is not None else await resolve(host, port)
    except OSError as exc:
        raise ApiError(400, f"source host {host!r} does not resolve: {exc.strerror or exc}") from None
    if not addresses:
        raise ApiError(400, f"source host {host!r} does not resolve")
    for raw in addresses:
        ip = _address(raw)
        listed = any(ip.version == net.version and ip in net for net in networks)
        if not listed and not by_name:
            raise ApiError(403, f"source host {host!r} ({ip}) is not in the engine's workflow_sources allow-list")
        if not listed and not _public(ip):
            raise ApiError(
                403,
                f"source host {host!r} resolves to {ip}, a loopback, private, link-local, multicast or reserved "
                "address: refused unless the allow-list names that address or network",
            )
    return parsed, addresses[0]


class _PinnedResolver(AbstractResolver):
    """Answers every lookup with the address that was checked: the connection cannot go anywhere else."""

    def __init__(self, address: str) -> None:
        self._address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        fam = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        return [{"hostname": host, "host": self._address, "port": port, "family": fam, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


async def fetch_source(policy: WorkflowSources, url: str, resolve: Resolve = _getaddrinfo) -> str:
    """The compose YAML at ``url`` as the policy allows it (see the module docstring)."""
    parsed, address = await check_source(policy, url, resolve)
    limit = policy.max_bytes
    connector = aiohttp.TCPConnector(resolver=_PinnedResolver(address), use_dns_cache=False, force_close=True)
    timeout = aiohttp.ClientTimeout(total=policy.timeout)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as http,
            http.get(parsed, allow_redirects=False, headers={"Accept": "application/yaml, text/plain, */*"}) as resp,
        ):
            if 300 <= resp.status < 400:
                target = resp.headers.get("Location", "?")[:200]
                raise ApiError(400, f"source answered a redirect (HTTP {resp.status} to {target}): give the final URL")
            if resp.status != 200:
                raise ApiError(400, f"source answered HTTP {resp.status}")
            if (resp.content_length or 0) > limit:
                raise ApiError(413, f"source is larger than {limit} bytes")
            data = b""
            async for chunk in resp.content.iter_any():
                data += chunk
                if len(data) > limit:
                    break
    except (aiohttp.ClientError, OSError) as exc:
        raise ApiError(400, f"cannot fetch source: {exc.__class__.__name__}: {exc}"[:300]) from None
    except TimeoutError:
        raise ApiError(400, f"cannot fetch source: no complete answer within {policy.timeout:g} s") from None
    if len(data) > limit:
        raise ApiError(413, f"source is larger than {limit} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "source is not UTF-8 text") from None
