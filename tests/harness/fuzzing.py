"""What the engine and director fuzz tests share: the routes an aiohttp app registers, JSON-ish value strategies,
path templates filled with generated segments, and generated request bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests
from aiohttp import web
from hypothesis import strategies as st

__all__ = ["app_routes", "body_for", "fill_path", "json_values", "send", "texts"]

texts = st.text(max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12
)


def app_routes(app: web.Application, skip: Callable[[str], bool] = lambda template: False) -> list[tuple[str, str]]:
    """(method, path template) of every route ``app`` registers, but HEAD, catch-alls and ``skip(template)``."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        if route.method not in ("HEAD", "*") and template and not skip(template):
            found.add((route.method, template))
    return sorted(found)


def fill_path(draw: st.DrawFn, template: str, segments: list[str], max_size: int) -> str:
    """``template`` with each ``{name}`` replaced by a quoted generated segment (one of ``segments`` or any text)."""
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        segment = draw(st.sampled_from(segments) | st.text(min_size=1, max_size=max_size))
        path = path[:start] + quote(segment, safe="") + path[end + 1 :]
    return path


def body_for(draw: st.DrawFn, bodies: st.SearchStrategy[dict], kinds: list[str], headers: dict[str, str]) -> bytes:
    """A request body of one of ``kinds``: JSON from ``bodies`` (Content-Type set when missing), raw bytes, deeply
    nested brackets or nothing."""
    kind = draw(st.sampled_from(kinds))
    if kind == "json":
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(draw(bodies)).encode()
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "nested":
        depth = draw(st.integers(1, 50_000))
        return b"[" * depth + b"]" * depth
    return b""


def send(
    session: requests.Session,
    base_url: str,
    request: dict,
    *,
    hang: float,
    alive: Callable[[], str | None],
    **kwargs: object,
) -> requests.Response:
    """Send one generated request; fail the test on no answer within ``hang`` s or a dropped connection, saying
    whether the daemon died (``alive()`` returns None while it runs, else what to say)."""
    kwargs.setdefault("headers", request["headers"])
    try:
        return session.request(
            request["method"],
            base_url + request["path"],
            params=request["params"],
            data=request["data"],
            timeout=hang,
            allow_redirects=False,
            **kwargs,  # type: ignore[arg-type]
        )
    except requests.ReadTimeout:
        pytest.fail(f"no answer within {hang} s: {request!r}")
    except requests.ConnectionError as exc:
        died = alive()
        assert died is None, f"{died} on {request!r}"
        pytest.fail(f"connection dropped ({exc}) on {request!r}")
