"""``dxflow director``: run the director, and manage agents, servers and sessions through its API."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from dxflow.cli.context import CliContext, emit, emit_current, pass_ctx, table
from dxflow.common.director_config import DirectorConfig, load_director_config
from dxflow.protocol.errors import ConfigError
from dxflow.server.lifecycle import Daemon, add_lifecycle, exec_module, listening

__all__ = ["director_group"]

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DXFLOW_DIRECTOR_CONFIG",
    help="Director YAML config (keys: host, port, data_dir, database_url, auth, ...).",
)


def _config(path: Path | None) -> DirectorConfig:
    try:
        return load_director_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _client(ctx: CliContext) -> Any:
    from dxflow.client.director import DirectorClient

    return DirectorClient(ctx.settings())


def _check(config: DirectorConfig) -> None:
    from dxflow.director.app import init_pki

    init_pki(config)  # refuse to start (before detaching) when ca.key is open to others


def _status(config: DirectorConfig, pid: int | None) -> tuple[dict[str, Any], str]:
    from dxflow.common.crypto import cert_fingerprint

    info: dict[str, Any] = {"port": config.port, "data_dir": str(config.data_dir)}
    ca = config.data_dir / "ca.crt"
    if ca.exists():
        from cryptography import x509

        info["ca_fingerprint"] = cert_fingerprint(x509.load_pem_x509_certificate(ca.read_bytes()))
    return info, f" on port {config.port}" if pid else ""


DIRECTOR = Daemon(
    name="director",
    load=load_director_config,
    run=exec_module("dxflow.director"),
    check=_check,
    address=lambda config: (config.host, config.port),
    ready=lambda config: config.port == 0 or listening(config.host, config.port),
    status=_status,
    up_help="Start the director (HTTPS + mTLS on port 8445 by default).",
    config_help="Director YAML config (keys: host, port, data_dir, database_url, auth, ...).",
)


@click.group("director")
def director_group() -> None:
    """Run the director and manage agents, servers and sessions."""


add_lifecycle(director_group, DIRECTOR, emit_current)


@director_group.command("hash-password")
@pass_ctx
def hash_password_command(ctx: CliContext) -> None:
    """Read a password on stdin, print its hash for ``auth.users`` (scrypt$N$r$p$salt$hash)."""
    from dxflow.director.passwords import hash_password

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("no password on stdin")
    encoded = hash_password(password)
    emit(ctx, {"hash": encoded}, encoded)


@director_group.command("issue-client-cert")
@config_option
@click.option("--name", required=True, help="Certificate name (CN), e.g. awx.")
@click.option("--role", type=click.Choice(["admin"]), default="admin", show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for ca.crt, tls.crt, tls.key. Default: <DXFLOW_HOME>/<profile>/mtls/.",
)
@click.option("--days", type=click.FloatRange(min=0.001), default=365.0, show_default=True)
@pass_ctx
def issue_client_cert_command(
    ctx: CliContext, config_path: Path | None, name: str, role: str, out: Path | None, days: float
) -> None:
    """Issue an mTLS client certificate from the director CA (run on the director host)."""
    from cryptography.hazmat.primitives import serialization

    from dxflow.client.mtls import write_bundle
    from dxflow.common.ca import CaError, generate_agent_key, load_ca, serial_hex
    from dxflow.common.crypto import private_pem
    from dxflow.director.db import Database

    config = _config(config_path)
    try:
        ca = load_ca(config.data_dir, create=False)
        key = generate_agent_key()
        cert = ca.issue_client_cert(key, name, role, days=days)
    except CaError as exc:
        raise click.ClickException(str(exc)) from None
    db = Database(config.db_url)
    try:
        db.record_cert(serial_hex(cert), "client", name, cert.not_valid_after_utc.timestamp())
    finally:
        db.close()
    folder = out or ctx.store.home / ctx.profile_name() / "mtls"
    write_bundle(folder, ca.cert_pem, cert.public_bytes(serialization.Encoding.PEM), private_pem(key))
    info = {"name": name, "role": role, "serial": serial_hex(cert), "out": str(folder)}
    emit(ctx, info, f"client certificate for {name} ({role}) written to {folder}")


@director_group.command("migrate")
@config_option
@click.option("--check", is_flag=True, help="Only report the database's schema revision; exit 1 when behind.")
@pass_ctx
def migrate_command(ctx: CliContext, config_path: Path | None, check: bool) -> None:
    """Upgrade the director database to this version's schema (run once per upgrade, before starting directors)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dxflow.director import schema
    from dxflow.director.db import Database

    config = _config(config_path)
    try:
        db = Database(config.db_url, check_schema=False)
        try:
            if check:
                with db.engine.connect() as conn:
                    before = after = schema.current_revision(conn)
            else:
                before, after = schema.migrate(db.engine)
        finally:
            db.close()
    except SQLAlchemyError as exc:
        from sqlalchemy.engine import make_url

        where = make_url(config.db_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]  # the driver's words, no SQLAlchemy links
        raise click.ClickException(f"cannot migrate the database {where}: {reason}") from None
    head = schema.head_revision()
    info = {"before": before, "revision": after, "head": head, "upToDate": after == head}
    if check:
        text = f"database schema {after or 'none'}; this director needs {head}"
    elif before == after:
        text = f"database schema {after} is up to date"
    else:
        text = f"database schema upgraded from {before or 'none'} to {after}"
    emit(ctx, info, text)
    if check and after != head:
        raise SystemExit(1)


# --- API commands ---------------------------------------------------------------------------------


@director_group.command("login")
@click.option("--user", required=True, help="Admin user name.")
@pass_ctx
def login_command(ctx: CliContext, user: str) -> None:
    """Log in as an admin (password on stdin); the 2-hour token is stored as the profile's connection-token."""
    password = (
        sys.stdin.readline().rstrip("\r\n") if not sys.stdin.isatty() else click.prompt("Password", hide_input=True)
    )
    settings = ctx.settings()
    with _client(ctx) as client:
        info = client.login(user, password)
        token = client.session_token()
    store = ctx.store
    if not store.exists(settings.profile) or not store.load(settings.profile).get("connection-address"):
        store.set_value(settings.profile, "connection-address", settings.address)
    store.set_value(settings.profile, "connection-token", token)
    emit(
        ctx,
        {"user": info["userId"], "admin": info["admin"], "profile": settings.profile, "expiresIn": info["expiresIn"]},
        f"logged in as {info['userId']}; token stored in profile {settings.profile} for 2 hours",
    )


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


@director_group.group("agents")
def agents_group() -> None:
    """List, approve, deny and revoke agent registrations."""


@agents_group.command("list")
@click.option("--state", type=click.Choice(["pending", "registered", "revoked"]))
@pass_ctx
def agents_list(ctx: CliContext, state: str | None) -> None:
    with _client(ctx) as client:
        rows = client.agents(state)
    lines = [[a["guid"], a["hostname"], a["state"], a["ip"], _when(a["lastSeen"])] for a in rows]
    emit(ctx, rows, table(lines, ["GUID", "HOSTNAME", "STATE", "IP", "LAST SEEN"]))


def _agent_action(name: str, method: str, past: str) -> None:
    @agents_group.command(name)
    @click.argument("guid")
    @pass_ctx
    def command(ctx: CliContext, guid: str) -> None:
        with _client(ctx) as client:
            result = getattr(client, method)(guid)
        emit(ctx, result, f"agent {guid} {past}")

    command.__doc__ = f"{name.capitalize()} the agent GUID."


_agent_action("approve", "approve_agent", "approved")
_agent_action("deny", "deny_agent", "denied and removed")
_agent_action("revoke", "revoke_agent", "revoked")


@director_group.command("tunnels")
@pass_ctx
def tunnels_command(ctx: CliContext) -> None:
    """Agent tunnels connected to the hub: hosts reachable through the director (docs/hub.md)."""
    with _client(ctx) as client:
        rows = client.tunnels()
    lines = [
        [t["hostname"], _when(t["since"])]
        + [str(t.get(k, "-")) for k in ("streamsOpen", "bytesIn", "bytesOut")]
        + [t.get("replica", "this one")]
        for t in rows
    ]
    emit(ctx, rows, table(lines, ["HOSTNAME", "SINCE", "STREAMS", "BYTES IN", "BYTES OUT", "REPLICA"]))


@director_group.group("servers")
def servers_group() -> None:
    """Servers reported by agents."""


@servers_group.command("list")
@click.option("--mine", is_flag=True, help="Only the live servers your policy allows (works for non-admins).")
@click.option("--names", is_flag=True, help="The hostnames a dcvix launcher lists for you (policy, ALLOW_CUSTOM).")
@pass_ctx
def servers_list(ctx: CliContext, mine: bool, names: bool) -> None:
    """List servers: every live server (admin), ``--mine`` or ``--names``."""
    with _client(ctx) as client:
        if names:
            workstations = client.user_workstations()
            emit(ctx, workstations, "\n".join(workstations))
            return
        rows = client.user_servers() if mine else client.servers()
    lines = [
        [
            s["hostname"],
            s["ip"],
            ",".join(s["tags"]),
            f"{s['engine'].get('address', '-')}:{s['engine'].get('port', '-')}" if s["engine"] else "-",
            str(len(s["sessions"])),
            _when(s["lastUpdate"]),
            "yes" if (s.get("hub") or {}).get("connected") else "-",  # the director says: an agent tunnel is up
        ]
        for s in rows
    ]
    emit(ctx, rows, table(lines, ["HOSTNAME", "IP", "TAGS", "ENGINE", "SESSIONS", "LAST UPDATE", "HUB"]))


@director_group.group("sessions")
def sessions_group() -> None:
    """Sessions on the servers."""


@sessions_group.command("list")
@pass_ctx
def sessions_list(ctx: CliContext) -> None:
    with _client(ctx) as client:
        rows = client.sessions()
    lines = [[s["id"], s["hostname"], str(s.get("owner", "")), str(s.get("type", ""))] for s in rows]
    emit(ctx, rows, table(lines, ["ID", "SERVER", "OWNER", "TYPE"]))


@sessions_group.command("create")
@click.option("--server", required=True, help="Server hostname or id.")
@click.option("--user", help="Session owner (default: you).")
@click.option("--type", "session_type", type=click.Choice(["console", "virtual"]), default="console")
@click.option("--id", "session_id", help="Session id (default: generated).")
@pass_ctx
def sessions_create(ctx: CliContext, server: str, user: str | None, session_type: str, session_id: str | None) -> None:
    with _client(ctx) as client:
        result = client.create_session(server, user, session_type, session_id)
    emit(ctx, result, f"session {result['sessionId']} created on {result['hostname']}")


@sessions_group.command("close")
@click.argument("session_id")
@click.option("--server", help="Server hostname or id (when ids repeat across servers).")
@pass_ctx
def sessions_close(ctx: CliContext, session_id: str, server: str | None) -> None:
    with _client(ctx) as client:
        result = client.close_session(session_id, server)
    emit(ctx, result, f"session {session_id} closed")
