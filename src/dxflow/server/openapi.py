"""OpenAPI 3.1 documents generated from an aiohttp route table (the table that serves the API, never a second list).

Every (method, path) the router serves is listed: the summary and description come from the handler's docstring,
path parameters from ``{name}`` segments, and query and body fields from what the handler declared with
``declare(...)``. A daemon adds its own per-operation details (security, permissions) through ``extra``.
Handlers read their declared integer query fields with ``query_int``, so the declaration is also the validation.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from dxflow.protocol.errors import ApiError

__all__ = ["Api", "build_spec", "declare", "declared", "query_int", "served_routes"]

BODY_METHODS = {"POST", "PUT", "PATCH"}
_ATTR = "dxflow_api"


@dataclass(frozen=True)
class Api:
    """What a handler declares about its input: query fields, JSON body fields (or a raw body's media type)."""

    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    body: Mapping[str, Mapping[str, Any]] | None = None
    required: tuple[str, ...] = ()
    raw_body: str | None = None


def declare(
    *,
    query: Mapping[str, Mapping[str, Any]] | None = None,
    body: Mapping[str, Mapping[str, Any]] | None = None,
    required: tuple[str, ...] = (),
    raw_body: str | None = None,
) -> Callable[[Any], Any]:
    """Attach the handler's input description (JSON Schema per field) for the OpenAPI document."""

    def mark(handler: Any) -> Any:
        setattr(handler, _ATTR, Api(dict(query or {}), body, tuple(required), raw_body))
        return handler

    return mark


def declared(handler: Any) -> Api | None:
    """The handler's ``declare`` description, or None."""
    return getattr(handler, _ATTR, None)


def query_int(request: web.Request, name: str, schema: Mapping[str, Any], *, clamp: bool = True) -> int | None:
    """The integer query field ``name`` as ``schema`` declares it: its ``default`` (None without one) when absent,
    clamped to ``minimum``/``maximum`` (or, with ``clamp=False``, ApiError(400) outside them); ApiError(400) when
    it is not an integer."""
    raw = request.query.get(name, "")
    if raw == "":
        return schema.get("default")
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer, not {raw[:40]!r}") from None
    low, high = int(schema.get("minimum", value)), int(schema.get("maximum", value))
    if not clamp and not low <= value <= high:
        raise ApiError(400, f"query parameter {name} must be between {low} and {high}")
    return max(low, min(high, value))


def served_routes(router: web.UrlDispatcher) -> list[tuple[str, web.AbstractRoute]]:
    """(path, route) of every route that the document lists (HEAD, ``*`` and static files left out)."""
    out = []
    for route in router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if not path or route.method in ("HEAD", "*") or "directory" in info:
            continue
        out.append((path, route))
    return out


def _operation(method: str, path: str, handler: Any, error_schema: Mapping[str, Any]) -> dict[str, Any]:
    doc = inspect.getdoc(handler) or ""
    name = getattr(handler, "__name__", "handler")
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{slug or 'root'}",
        "summary": doc.splitlines()[0] if doc else name.replace("_", " "),
        "responses": {
            "200": {"description": "success", "content": {"application/json": {"schema": {}}}},
            "4XX": {"description": "refused", "content": {"application/json": {"schema": dict(error_schema)}}},
        },
    }
    if "\n" in doc:
        op["description"] = doc
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)
    ]
    api = declared(handler)
    if api is not None:
        params += [{"name": k, "in": "query", "required": False, "schema": dict(v)} for k, v in api.query.items()]
    if params:
        op["parameters"] = params
    if api is not None and api.raw_body:
        op["requestBody"] = {"required": True, "content": {api.raw_body: {"schema": {}}}}
    elif api is not None and api.body is not None:
        schema: dict[str, Any] = {"type": "object", "properties": {k: dict(v) for k, v in api.body.items()}}
        if api.required:
            schema["required"] = list(api.required)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    elif method in BODY_METHODS:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    return op


def build_spec(
    router: web.UrlDispatcher,
    title: str,
    version: str,
    *,
    error_schema: Mapping[str, Any],
    extra: Callable[[str, web.AbstractRoute], Mapping[str, Any]] | None = None,
    components: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in ``router``; ``extra(path, route)`` adds fields to an operation."""
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for path, route in served_routes(router):
        op = _operation(route.method, path, route.handler, error_schema)
        if op["operationId"] in seen:  # ``/a/`` and ``/a`` (an alias without its slash) make the same slug
            op["operationId"] += "_noslash" if not path.endswith("/") else "_slash"
        seen.add(op["operationId"])
        if extra is not None:
            op.update(extra(path, route))
        paths.setdefault(path, {})[route.method.lower()] = op
    spec: dict[str, Any] = {"openapi": "3.1.0", "info": {"title": title, "version": version}}
    spec["paths"] = dict(sorted(paths.items()))
    if components:
        spec["components"] = dict(components)
    return spec
