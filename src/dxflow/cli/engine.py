"""``dxflow engine``: ping, healthcheck, stat, token."""

from __future__ import annotations

import time
from pathlib import Path

import click

from dxflow.cli.context import CliContext, emit, emit_line, pass_ctx
from dxflow.common.config import default_engine_data_dir
from dxflow.protocol.durations import parse_duration

__all__ = ["engine_group"]


@click.group("engine")
def engine_group() -> None:
    """Talk to an engine (the profile's connection-address)."""


@engine_group.command("ping")
@click.option("-c", "--count", default=1, show_default=True, type=click.IntRange(1, 10_000))
@click.option("-i", "--interval", default=1000, show_default=True, type=click.IntRange(0, 60_000), help="ms")
@pass_ctx
def ping_command(ctx: CliContext, count: int, interval: int) -> None:
    """Round trips to the engine (authenticated)."""
    client = ctx.engine()
    sent = time.monotonic()
    for pong in client.ping(count, interval):
        rtt = (time.monotonic() - sent) * 1000
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
    emit(ctx, health, f"{health['status']} (version {health['version']}, up {health['uptime']:.0f} s)")


def _human_stat(sample: dict) -> str:
    lines = []
    if "cpu" in sample:
        c = sample["cpu"]
        lines.append(f"cpu:     {c['percent']:.1f}% of {c['cores']} cores, load {c['load1']:.2f}")
    if "memory" in sample:
        m = sample["memory"]
        lines.append(f"memory:  {m['used'] / 2**30:.2f} GiB used of {m['total'] / 2**30:.2f} GiB ({m['percent']}%)")
    if "disk" in sample:
        d = sample["disk"]
        lines.append(f"disk:    {d['used'] / 2**30:.1f} GiB used of {d['total'] / 2**30:.1f} GiB ({d['percent']}%)")
    if "network" in sample:
        n = sample["network"]
        lines.append(f"network: {n['bytes_recv']} bytes in, {n['bytes_sent']} bytes out")
    return "\n".join(lines)


@engine_group.command("stat")
@click.argument("kind", required=False, type=click.Choice(["cpu", "memory", "disk", "network"]))
@click.option("--live", is_flag=True, help="Stream samples until interrupted (or --count).")
@click.option("--count", default=0, type=click.IntRange(0), help="Samples to stream with --live (0 = forever).")
@click.option("--interval", default=1000, type=click.IntRange(100, 60_000), help="ms between live samples")
@pass_ctx
def stat_command(ctx: CliContext, kind: str | None, live: bool, count: int, interval: int) -> None:
    """Host statistics: cpu, memory, disk, network."""
    client = ctx.engine()
    if not live:
        sample = client.stat(kind)
        emit(ctx, sample, _human_stat(sample))
        return
    for sample in client.stat_live(kind, count, interval):
        emit_line(ctx, sample, _human_stat(sample) + "\n")


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
