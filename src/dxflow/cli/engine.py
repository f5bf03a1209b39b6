"""``dxflow engine``: ping, healthcheck, info, stats, token (``3.cli/005.engine``); ``dxflow stats`` is
``engine stats``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, emit_line, pass_ctx
from dxflow.common.config import default_engine_data_dir
from dxflow.protocol.durations import parse_duration

__all__ = ["engine_group", "stats_command"]


@click.group("engine")
def engine_group() -> None:
    """Talk to an engine (the profile's connection-address)."""


@engine_group.command("ping")
@click.option("-c", "--count", default=3, show_default=True, type=click.IntRange(1, 300), help="Number of pings.")
@click.option(
    "-i", "--interval", default=1000, show_default=True, type=click.IntRange(1000, 30_000), help="ms between pings."
)
@pass_ctx
def ping_command(ctx: CliContext, count: int, interval: int) -> None:
    """Round trips to the engine (authenticated): the engine's clock in ms, as each pong arrives."""
    client = ctx.engine()
    sent = time.monotonic()
    for pong in client.ping(count, interval):
        # The engine streams one pong every ``interval`` ms: after the first, the wait includes that interval.
        rtt = max(0.0, (time.monotonic() - sent) * 1000 - (interval if pong["seq"] > 1 else 0))
        emit_line(
            ctx,
            pong | {"rtt_ms": round(rtt, 2)},
            f"pong from {client.session.settings.address}: seq={pong['seq']} time={pong['time']} rtt={rtt:.1f} ms",
        )
        sent = time.monotonic()


@engine_group.command("healthcheck")
@pass_ctx
def healthcheck_command(ctx: CliContext) -> None:
    """Is the engine up (no auth needed)."""
    health = ctx.engine().healthcheck()
    emit(ctx, {"health": health}, str(health))


def _size(value: float) -> str:
    """Bytes in the units of the public CLI's output: ``67 GB``, ``2.0 TB``."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.1f} {unit}" if unit != "B" and value < 10 else f"{value:.0f} {unit}"
        value /= 1000
    return ""


def _rows(title: str, rows: list[tuple[str, str]]) -> list[str]:
    return [f"● {title}"] + [f"  {label:<11} {value}" for label, value in rows]


def _human_info(info: dict[str, Any]) -> str:
    host, cpu, memory = info.get("host", {}), info.get("cpu", {}), info.get("memory", {})
    system = [
        ("OS", f"{host.get('platform') or host.get('os', '')} {host.get('version', '')}  ({host.get('arch', '')})"),
        ("CPU", f"{cpu.get('model', '')}  ({cpu.get('cores', 0)} CORE)"),
    ]
    gpus = info.get("gpu") or []
    if gpus:
        models = ", ".join(dict.fromkeys(g.get("model", "") for g in gpus))
        system.append(("GPU", f"{len(gpus)}x {models} ({_size(sum(g.get('memory', 0) for g in gpus))})"))
    system.append(("Memory", f"{_size(memory.get('physical', 0))}  (+{_size(memory.get('swap', 0))} swap)"))
    if info.get("disk"):
        system.append(("Disk", "  ".join(f"{d['name']} ({_size(d['size'])})" for d in info["disk"])))
    if info.get("network"):
        system.append(("Network", "  ".join(f"{n['name']} ({n['address']})" for n in info["network"])))
    runtimes = [f"{name} {version}" for name, version in (info.get("runtime") or {}).items() if version]
    if runtimes:
        system.append(("Runtime", "  ".join(runtimes)))
    engine = [
        ("Identity", info.get("identity", "")),
        ("Directory", info.get("directory", "")),
        ("Volume", info.get("volume", "")),
        ("Profile", info.get("config_profile", "")),
        ("Version", info.get("version", "")),
    ]
    if info.get("capabilities"):
        engine.append(("Extensions", " ".join(info["capabilities"])))
    return "\n".join(_rows("Engine", engine) + _rows("System", system))


@engine_group.command("info")
@pass_ctx
def info_command(ctx: CliContext) -> None:
    """Engine and host attributes (``/api/engine/info/``)."""
    info = ctx.engine().info()
    emit(ctx, info, _human_info(info))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _human_stats(stats: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    cores = list(stats.get("cpu", {}).get("points", {}).values())
    user, system = _mean([c["user"] for c in cores]), _mean([c["system"] for c in cores])
    lines += _rows("Cpu", [("User", f"{user:3.0f}%  ({len(cores)} CORE)"), ("System", f"{system:3.0f}%")])
    gpus = list(stats.get("gpu", {}).get("points", {}).values())
    if gpus:
        used, total = sum(g["memory_used"] for g in gpus), sum(g["memory_total"] for g in gpus)
        usage = _mean([g["utilization"] for g in gpus])
        share = 100 * used / total if total else 0
        memory = f"{share:3.0f}%  ({_size(used * 2**20)} / {_size(total * 2**20)})"
        lines += _rows("Gpu", [("Usage", f"{usage:3.0f}%  ({len(gpus)} GPU)"), ("Memory", memory)])
    mem = stats.get("memory", {}).get("points", {})
    physical, swap = mem.get("physical", {}), mem.get("swap", {})
    lines += _rows(
        "Memory",
        [
            ("Physical", f"{physical.get('percent', 0):3.0f}%  ({_size(physical.get('value', 0))})"),
            ("Swap", f"{swap.get('percent', 0):3.0f}%"),
        ],
    )
    disks = stats.get("disk", {}).get("points", {})
    root = disks.get("/") or next(iter(disks.values()), {"percent": 0, "value": 0})
    lines += _rows("Disk", [("Total", f"{root['percent']:3.0f}%  ({_size(root['value'])})")])
    nics = stats.get("network", {}).get("points", {}).values()
    sent, received = sum(n["sent"] for n in nics), sum(n["received"] for n in nics)
    lines += _rows("Network", [("Sent", _size(sent)), ("Received", _size(received))])
    return "\n".join(lines)


@click.command("stats")
@pass_ctx
def stats_command(ctx: CliContext) -> None:
    """Live engine statistics: cpu, gpu (when present), memory, disk, network."""
    stats = ctx.engine().stats()
    emit(ctx, stats, _human_stats(stats))


engine_group.add_command(stats_command)


@engine_group.command("token")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Engine data dir (mint locally with engine.key).")
@click.option("--lifetime", default="1h", show_default=True, help="1m to 24h, e.g. 30m, 2h.")
@click.option("--remote", is_flag=True, help="Get the token from the profile's engine by challenge-response.")
@pass_ctx
def token_command(ctx: CliContext, data_dir: Path | None, lifetime: str, remote: bool) -> None:
    """Print a token: minted locally with the engine's key (on the engine host) or fetched with --remote."""
    from dxflow.engine.tokens import MAX_LIFETIME, MIN_LIFETIME

    try:
        seconds = parse_duration(lifetime)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--lifetime") from None
    if not MIN_LIFETIME <= seconds <= MAX_LIFETIME:
        raise click.BadParameter("must be between 1m and 24h", param_hint="--lifetime")
    if remote:
        token = ctx.engine().token(lifetime)
    else:
        from dxflow.engine.local import mint_local_token

        token = mint_local_token(data_dir or default_engine_data_dir(), seconds)
    emit(ctx, {"token": token}, token)
