"""Engine settings from YAML, then DXFLOW_ENGINE_*, then `boot up` flags (DESIGN §7), and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dxflow.cli.main import cli
from dxflow.common.config import load_engine_config
from dxflow.protocol.errors import ConfigError


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "etc" / "engine.yaml"
    cfg.parent.mkdir()
    cfg.write_text("port: 9001\nhost: 127.0.0.2\ndata_dir: data\nchallenge_burst: 7\nheader_timeout: 5\n")
    env = {"DXFLOW_ENGINE_PORT": "9002", "DXFLOW_ENGINE_CHALLENGE_BURST": "8"}
    config = load_engine_config(cfg, env, challenge_burst=9, host=None)
    assert config.port == 9002  # env beats the file
    assert config.challenge_burst == 9  # the flag beats env and file
    assert config.host == "127.0.0.2"  # an absent flag (None) overrides nothing
    assert config.data_dir == cfg.parent / "data"  # relative to the config file's folder
    assert config.header_timeout == 5.0
    assert config.pid_file == cfg.parent / "data" / "engine.pid"


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_engine_config(None, {"DXFLOW_ENGINE_DATA_DIR": str(tmp_path / "d")})
    assert (config.host, config.port, config.plaintext) == ("127.0.0.1", 8080, False)
    assert config.data_dir == tmp_path / "d"
    assert (config.header_timeout, config.handshake_timeout, config.keepalive_timeout) == (30.0, 10.0, 75.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: blue\n", "unknown config key 'colour'"),
        ("port: 70000\n", "'port' must be a TCP port"),
        ("port: eighty\n", "'port' must be a number"),
        ("tls_cert: /etc/c.pem\n", "'tls_cert' and 'tls_key'"),
        ("edge_jwks: /etc/jwks.json\n", "needs 'edge_audience'"),
        ("header_timeout: 0\n", "'header_timeout' must be positive"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_engine_config(cfg, {})


def test_boot_up_reports_an_unknown_key_before_starting(tmp_path: Path) -> None:
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nlisten_port: 1\n")
    result = CliRunner().invoke(cli, ["boot", "up", "--config", str(cfg)], env={"DXFLOW_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert "unknown config key 'listen_port'" in result.output
    assert not (tmp_path / "data" / "engine.pid").exists()


def test_env_names_of_the_old_flags_still_work(tmp_path: Path) -> None:
    env = {
        "DXFLOW_ENGINE_HOST": "::1",
        "DXFLOW_ENGINE_FILES_ROOT": str(tmp_path),
        "DXFLOW_ENGINE_EDGE_JWKS": "https://idp.example/jwks",
        "DXFLOW_ENGINE_EDGE_AUDIENCE": "dxflow",
        "DXFLOW_ENGINE_EDGE_ISSUER": "https://idp.example",
    }
    config = load_engine_config(None, env)
    assert (config.host, config.files_root, config.edge_audience) == ("::1", tmp_path.resolve(), "dxflow")


def test_relative_paths_from_env_and_flags_are_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "etc" / "engine.yaml"
    cfg.parent.mkdir()
    cfg.write_text("data_dir: from-file\n")
    monkeypatch.chdir(tmp_path)
    assert load_engine_config(cfg, {}).data_dir == cfg.parent / "from-file"
    assert load_engine_config(cfg, {"DXFLOW_ENGINE_DATA_DIR": "from-env"}).data_dir == tmp_path / "from-env"
    assert load_engine_config(cfg, {}, data_dir="from-flag").data_dir == tmp_path / "from-flag"
