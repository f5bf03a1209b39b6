"""Agent and director config: YAML keys, environment overrides, unknown keys, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxflow.common.agent_config import load_agent_config
from dxflow.common.director_config import load_director_config
from dxflow.protocol.errors import ConfigError


def test_agent_yaml_and_env(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("director_address: https://d:8445\ntags: [a, b]\nregistration_token: s3cret\n")
    config = load_agent_config(cfg, env={"DXFLOW_AGENT_UPDATE_INTERVAL": "5", "DXFLOW_AGENT_TAGS": "x,y"})
    assert config.update_interval == 5.0 and config.tags == ("x", "y")
    assert config.agent_port == 8446 and config.session_backend == "engine"
    assert "s3cret" not in repr(config)


def test_agent_unknown_key_and_bad_values(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("director_address: https://d\nupdate_intervall: 3\n")
    with pytest.raises(ConfigError, match="update_intervall"):
        load_agent_config(cfg, env={})
    cfg.write_text("director_address: http://d\n")
    with pytest.raises(ConfigError, match="https://"):
        load_agent_config(cfg, env={})
    cfg.write_text("director_address: https://d\nsession_backend: vnc\n")
    with pytest.raises(ConfigError, match="session_backend"):
        load_agent_config(cfg, env={})
    with pytest.raises(ConfigError, match="director_address"):
        load_agent_config(None, env={})


def test_director_defaults_nested_and_env(tmp_path: Path) -> None:
    cfg = tmp_path / "d.yaml"
    cfg.write_text("housekeeper: {period: 5}\nauth: {type: local, users: {root: 'scrypt$x'}}\ntoken_key: k\n")
    config = load_director_config(cfg, env={"DXFLOW_DIRECTOR_PORT": "9000"})
    assert config.port == 9000 and config.agent_port == 8446
    assert config.housekeeper.period == 5 and config.housekeeper.max_age == 30
    assert "scrypt" not in repr(config) and "token_key='k'" not in repr(config)
    cfg.write_text("housekeeper: {periods: 5}\n")
    with pytest.raises(ConfigError, match="periods"):
        load_director_config(cfg, env={})
    cfg.write_text("auth: {type: kerberos}\n")
    with pytest.raises(ConfigError, match="kerberos"):
        load_director_config(cfg, env={})
