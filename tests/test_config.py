"""Settings: TOML file, environment overrides, validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synapse_mojo.config import Fault, Mode, force_python, load_settings
from synapse_mojo.errors import ConfigError


def test_defaults():
    s = load_settings(environ={})
    assert {f: str(m) for f, m in s.modes.items()} == {
        "pattern_search": "auto",
        "message_router": "auto",
        "vector_engine": "auto",
    }
    assert s.threads == 0 and s.effective_threads() >= 1
    assert s.alerts.error_rate == 0.01 and s.alerts.fallback_rate == 0.10
    assert s.alerts.p95_regression == 0.20
    assert s.faults == {}


def test_toml_then_environment(tmp_path):
    path = tmp_path / "synapse.toml"
    path.write_text(
        """
        [runtime]
        threads = 3
        kernel_cache = "/tmp/k"
        [features]
        pattern_search = "canary:0.25"
        message_router = "off"
        [alerts]
        error_rate = 0.05
        window = 50
        [faults]
        vector_engine = "wrong:0.5"
        """
    )
    s = load_settings(
        environ={
            "SYNAPSE_CONFIG": str(path),
            "SYNAPSE_THREADS": "2",
            "SYNAPSE_FEATURE_MESSAGE_ROUTER": "shadow",
            "SYNAPSE_ALERT_MIN_CALLS": "7",
        }
    )
    assert s.source == str(path)
    assert s.threads == 2  # env beats the file
    assert s.kernel_cache == "/tmp/k"
    assert s.mode("pattern_search") == Mode("canary", 0.25)
    assert str(s.mode("message_router")) == "shadow"
    assert s.alerts.error_rate == 0.05 and s.alerts.window == 50 and s.alerts.min_calls == 7
    assert s.fault("vector_engine") == Fault("wrong", 0.5)


@pytest.mark.parametrize(
    "content, match",
    [
        ("[features]\npattern_search = 'fast'", "expected off, on, auto"),
        ("[features]\nwarp = 'on'", "unknown feature"),
        ("[runtime]\nthreads = 'many'", "expected int"),
        ("[runtime]\nthreds = 2", "unknown key"),
        ("[alerts]\nerror_rate = true", "expected float"),
        ("[faults]\npattern_search = 'explode'", "expected raise or wrong"),
        ("[faults]\npattern_search = 'raise:2'", "rate must be"),
        ("[gpu]\nx = 1", "unknown section"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_settings(environ={"SYNAPSE_CONFIG": str(path)})


def test_missing_file_and_bad_env():
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"SYNAPSE_CONFIG": "/nonexistent/synapse.toml"})
    with pytest.raises(ConfigError, match="canary fraction"):
        load_settings(environ={"SYNAPSE_FEATURE_PATTERN_SEARCH": "canary:1.5"})
    with pytest.raises(ConfigError, match=">= 0"):
        load_settings(environ={"SYNAPSE_THREADS": "-1"})
    with pytest.raises(ConfigError, match="SYNAPSE_FORCE_PYTHON"):
        load_settings(environ={"SYNAPSE_FORCE_PYTHON": "perhaps"})


@pytest.mark.parametrize(
    "value, expected",
    [("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("off", False)],
)
def test_force_python_spellings(value, expected):
    assert force_python({"SYNAPSE_FORCE_PYTHON": value}) is expected
    assert force_python({}) is False


def test_mode_and_fault_round_trip():
    for text in ("off", "on", "auto", "shadow", "canary:0.1"):
        assert str(Mode.parse(text)) == text
    assert Fault.parse("none") is None
    assert str(Fault.parse("raise")) == "raise:1"


def test_the_documented_example_is_the_defaults(tmp_path):
    """docs/runtime.md holds the one example settings file: it must load, and (its fault line
    commented out) give exactly the built-in defaults it claims to show."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "runtime.md").read_text()
    examples = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    assert len(examples) == 1, "docs/runtime.md should hold exactly one TOML example"
    path = tmp_path / "synapse.toml"
    path.write_text(examples[0])
    documented = load_settings(path, environ={})
    defaults = load_settings(environ={})
    assert documented.alerts == defaults.alerts
    assert documented.modes == defaults.modes
    assert documented.faults == defaults.faults
    for key in ("threads", "kernel_dir", "kernel_cache", "kernel_source", "target_cpu"):
        assert getattr(documented, key) == getattr(defaults, key)
    assert set(documented.configured_modes) == set(defaults.modes)
