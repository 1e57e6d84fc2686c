"""The config schema: defaults, every kind of error, files, TOML round trip and ``polewatch config``."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import edge.config
from edge.cli import main
from edge.config import (
    AudioConfig,
    Config,
    DetectConfig,
    LoggingConfig,
    UnitConfig,
    config_to_toml,
    load_config,
    parse_config,
)
from edge.errors import ConfigError


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.toml")
    assert caught.value.source == "test.toml"
    return caught.value.problems


def only_problem(data: dict[str, Any]) -> str:
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


def write(tmp_path: Path, text: str, name: str = "polewatch.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# Parsing from dicts


def test_empty_data_gives_the_defaults() -> None:
    config = parse_config({})
    assert config == Config()
    assert config.unit.id == "polewatch-dev"
    assert config.audio.source == "pyaudio"
    assert config.audio.chunk_ms == 100
    assert config.audio.ring_seconds == 30.0
    assert config.detect.threshold == 0.0
    assert config.logging.level == "info"


def test_keys_left_out_keep_their_defaults() -> None:
    config = parse_config({"audio": {"chunk_ms": 50}, "detect": {}})
    assert config.audio.chunk_ms == 50
    assert config.audio.ring_seconds == AudioConfig().ring_seconds
    assert config.detect == DetectConfig()


def test_an_int_is_accepted_where_a_float_is_expected_and_stored_as_float() -> None:
    config = parse_config({"audio": {"ring_seconds": 10}, "detect": {"gate_min_dbfs": -50}})
    assert config.audio.ring_seconds == 10.0
    assert isinstance(config.audio.ring_seconds, float)
    assert isinstance(config.detect.gate_min_dbfs, float)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("audio", "device_rate", 0),
        ("audio", "device_rate", 8000),
        ("audio", "device_rate", 192_000),
        ("audio", "chunk_ms", 10),
        ("audio", "chunk_ms", 1000),
        ("audio", "reopen_interval_s", 0.1),
        ("detect", "threshold", 0),
        ("detect", "threshold", 0.5),
        ("detect", "gate_min_dbfs", 0),
        ("unit", "id", "pole-7"),
        ("unit", "id", "a" * 64),
    ],
)
def test_values_at_the_edges_of_what_is_allowed(section: str, key: str, value: object) -> None:
    config = parse_config({section: {key: value}})
    assert getattr(getattr(config, section), key) == value


def test_a_file_source_with_its_file_is_valid() -> None:
    config = parse_config({"audio": {"source": "file", "file": "shots.flac", "loop": True, "realtime": False}})
    assert config.audio == AudioConfig(source="file", file="shots.flac", loop=True, realtime=False)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"audio": {"chunk_ms": 5000}}, "audio.chunk_ms = 5000: must be between 10 and 1000 (milliseconds)"),
        ({"audio": {"chunk_ms": 9}}, "audio.chunk_ms = 9: must be between 10 and 1000 (milliseconds)"),
        ({"audio": {"source": "alsa"}}, 'audio.source = "alsa": must be one of "pyaudio", "file"'),
        ({"unit": {"id": "Pole 7"}}, 'unit.id = "Pole 7": must match [a-z0-9-]{1,64}'),
        ({"unit": {"id": ""}}, 'unit.id = "": must match [a-z0-9-]{1,64}'),
        ({"unit": {"id": "a" * 65}}, "must match [a-z0-9-]{1,64}"),
        ({"detect": {"threshold": "high"}}, 'detect.threshold = "high": must be a number'),
        ({"detect": {"threshold": 1.0}}, "detect.threshold = 1.0: must be between 0 and 1 (exclusive), or 0"),
        (
            {"detect": {"threshold": -0.1}},
            "detect.threshold = -0.1: must be between 0 and 1 (exclusive), or 0",
        ),
        (
            {"audio": {"device_rate": 7999}},
            "audio.device_rate = 7999: must be between 8000 and 192000, or 0 (Hz)",
        ),
        (
            {"audio": {"ring_seconds": 121.5}},
            "audio.ring_seconds = 121.5: must be between 5 and 120 (seconds)",
        ),
        ({"audio": {"ring_seconds": float("inf")}}, "audio.ring_seconds = inf: must be a finite number"),
        ({"audio": {"ring_seconds": float("nan")}}, "audio.ring_seconds = nan: must be a finite number"),
        ({"detect": {"gate_rise_db": 2}}, "detect.gate_rise_db = 2: must be between 3 and 30 (dB)"),
        ({"detect": {"gate_min_dbfs": 3.0}}, "detect.gate_min_dbfs = 3.0: must be between -100 and 0 (dBFS)"),
        ({"detect": {"num_threads": 8}}, "detect.num_threads = 8: must be between 1 and 4 (threads)"),
        (
            {"logging": {"level": "verbose"}},
            'logging.level = "verbose": must be one of "debug", "info", "warning"',
        ),
    ],
)
def test_a_bad_value_names_key_value_and_what_is_allowed(data: dict[str, Any], expected: str) -> None:
    assert expected in only_problem(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # bool is not an int, and not a float either
        ({"audio": {"chunk_ms": True}}, "audio.chunk_ms = true: must be a whole number between 10 and 1000"),
        (
            {"detect": {"burst_gap_s": False}},
            "detect.burst_gap_s = false: must be a number between 0.2 and 10",
        ),
        # a float is not an int, even a whole one
        (
            {"detect": {"num_threads": 2.0}},
            "detect.num_threads = 2.0: must be a whole number between 1 and 4",
        ),
        # strings are not coerced
        ({"audio": {"chunk_ms": "100"}}, 'audio.chunk_ms = "100": must be a whole number'),
        ({"audio": {"loop": "true"}}, 'audio.loop = "true": must be true or false'),
        ({"audio": {"realtime": 1}}, "audio.realtime = 1: must be true or false"),
        ({"audio": {"device": 2}}, 'audio.device = 2: must be a string in "quotes"'),
        ({"audio": {"source": 1}}, 'audio.source = 1: must be one of "pyaudio", "file"'),
        ({"detect": {"model": ["a.tflite"]}}, 'detect.model = ["a.tflite"]: must be a string'),
    ],
)
def test_types_are_strict(data: dict[str, Any], expected: str) -> None:
    assert expected in only_problem(data)


def test_quoted_numbers_and_booleans_get_a_hint_but_words_do_not() -> None:
    assert only_problem({"audio": {"chunk_ms": "100"}}).endswith("write it without quotes")
    assert only_problem({"audio": {"loop": "true"}}).endswith("write it without quotes")
    assert "quotes" not in only_problem({"detect": {"threshold": "high"}})
    assert 'write "2"' in only_problem({"audio": {"device": 2}})


def test_a_miscased_choice_suggests_the_right_one() -> None:
    assert '(did you mean "info"?)' in only_problem({"logging": {"level": "INFO"}})


def test_an_unknown_key_suggests_the_closest_and_lists_the_allowed_keys() -> None:
    problem = only_problem({"audio": {"chnk_ms": 100}})
    assert problem.startswith("audio.chnk_ms: unknown key (did you mean chunk_ms?)")
    assert "allowed keys in [audio]: chunk_ms, device, device_rate, file, loop" in problem


def test_an_unknown_key_far_from_any_name_has_no_suggestion() -> None:
    problem = only_problem({"detect": {"zzzz": 1}})
    assert "did you mean" not in problem
    assert "allowed keys in [detect]: burst_gap_s" in problem


def test_an_unknown_section_lists_the_allowed_sections() -> None:
    problem = only_problem({"camera": {"device": "csi"}})
    assert problem == (
        "[camera]: unknown section; allowed sections: "
        "audio, detect, health, homeassistant, logging, mqtt, outbox, position, unit"
    )
    assert "(did you mean audio?)" in only_problem({"audoi": {}})


def test_a_key_outside_any_section_is_pointed_at_its_section() -> None:
    assert only_problem({"chunk_ms": 100}) == "chunk_ms: key outside any section; move it under [audio]"
    assert "settings go in sections: audio, detect" in only_problem({"colour": "red"})


def test_a_section_written_as_a_value_is_an_error() -> None:
    assert only_problem({"audio": 3}) == "audio = 3: must be a section; write it as [audio]"


def test_a_file_source_without_a_file_is_a_cross_field_error() -> None:
    problem = only_problem({"audio": {"source": "file"}})
    assert problem.startswith('audio.file = "": required when audio.source = "file"')


def test_cross_field_rules_wait_until_every_key_of_the_section_is_valid() -> None:
    # the file is also missing, but reporting it on top of the typo would be noise
    assert problems_of({"audio": {"source": "file", "chunk_ms": 0}}) == [
        "audio.chunk_ms = 0: must be between 10 and 1000 (milliseconds)"
    ]


def test_every_problem_is_collected_not_just_the_first() -> None:
    problems = problems_of(
        {
            "unit": {"id": "Pole 7"},
            "audio": {"chunk_ms": 5000, "source": "alsa", "chnk_ms": 1},
            "detect": {"threshold": "high"},
            "camera": {},
        }
    )
    assert len(problems) == 6
    for key in ("unit.id", "audio.chunk_ms", "audio.source", "audio.chnk_ms", "detect.threshold", "[camera]"):
        assert sum(problem.startswith(key) for problem in problems) == 1, (key, problems)


def test_the_error_message_carries_the_source_and_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"audio": {"chunk_ms": 5000}, "detect": {"num_threads": 0}}, "/etc/polewatch/polewatch.toml")
    text = str(caught.value)
    assert text.startswith("/etc/polewatch/polewatch.toml: audio.chunk_ms = 5000")
    assert "detect.num_threads = 0" in text
    assert isinstance(caught.value, ValueError)


def test_every_key_is_documented() -> None:
    for section in fields(Config):
        section_type = type(getattr(Config(), section.name))
        assert section_type.__doc__
        for key in fields(section_type):
            spec = key.metadata[edge.config._SPEC]
            assert spec.doc, f"{section.name}.{key.name} has no doc"
            dimensionless = f"{section.name}.{key.name}" in ("detect.threshold", "detect.round_score")  # scores
            if key.type in ("int", "float") and not dimensionless:
                assert spec.unit, f"{section.name}.{key.name} has no unit"


# Files


def test_load_a_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[unit]\nid = "pole-7"\n\n[audio]\nchunk_ms = 50\nring_seconds = 10\n')
    config = load_config(path)
    assert config.unit == UnitConfig(id="pole-7")
    assert config.audio.chunk_ms == 50
    assert config.audio.ring_seconds == 10.0


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_problems_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[audio]\nchunk_ms = 5000\n[camera]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert len(caught.value.problems) == 2


def test_a_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[unit]\nid = "pole-7"\n[audio]\nsource = pyaudio\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    [problem] = caught.value.problems
    assert problem.startswith("line 4, column 10: invalid TOML")
    assert '"quotes"' in problem


def test_a_duplicate_key_is_a_toml_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3"):
        load_config(write(tmp_path, "[audio]\nchunk_ms = 10\nchunk_ms = 20\n"))


def test_a_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == [f"file not found; create it with: polewatch config defaults > {path}"]


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[unit]\nid = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_no_path_means_the_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge.config, "DEFAULT_CONFIG_PATH", write(tmp_path, '[unit]\nid = "pole-9"\n'))
    assert load_config(None).unit.id == "pole-9"


# Writing TOML


def test_the_detect_defaults_are_the_detectors() -> None:
    """The config repeats the gate's, bursts' and texture check's defaults (the unit runs what the model card
    measured, and ``detect``/``evaluate`` without ``--config`` score as a unit with the default config)."""
    from edge.detect.params import DetectorParams

    assert DetectorParams.from_config(DetectConfig()) == DetectorParams()


def test_defaults_round_trip_and_are_commented() -> None:
    text = config_to_toml(Config(), header="a header\nsecond line")
    assert text.startswith("# a header\n# second line\n")
    assert parse_config(tomllib.loads(text)) == Config()
    assert "# Audio per read.\n#   Allowed: a whole number between 10 and 1000 (milliseconds)." in text
    assert "chunk_ms = 100\n" in text


def test_a_changed_config_round_trips_through_a_file(tmp_path: Path) -> None:
    config = parse_config(
        {
            "unit": {"id": "pole-7"},
            "audio": {"source": "file", "file": 'C:\\clips\\"shot".wav', "ring_seconds": 12, "loop": True},
            "detect": {"threshold": 0.25, "gate_min_dbfs": -72.5},
            "logging": {"level": "debug"},
        }
    )
    path = write(tmp_path, config_to_toml(config))
    assert load_config(path) == config
    assert "# Default: 30.0." not in path.read_text(encoding="utf-8")
    assert "ring_seconds = 12.0\n" in path.read_text(encoding="utf-8")


valid_configs = st.builds(
    Config,
    unit=st.builds(UnitConfig, id=st.from_regex(r"[a-z0-9-]{1,64}", fullmatch=True)),
    audio=st.builds(
        AudioConfig,
        source=st.sampled_from(["pyaudio", "file"]),
        device=st.text(max_size=40),
        device_rate=st.just(0) | st.integers(8000, 192_000),
        chunk_ms=st.integers(10, 1000),
        file=st.text(max_size=40).filter(bool),
        realtime=st.booleans(),
        loop=st.booleans(),
        ring_seconds=st.floats(5, 120),
        reopen_interval_s=st.floats(0.1, 60),
    ),
    detect=st.builds(
        DetectConfig,
        model=st.text(max_size=40),
        threshold=st.just(0.0) | st.floats(0, 1, exclude_min=True, exclude_max=True),
        burst_gap_s=st.floats(0.2, 10),
        gate_rise_db=st.floats(3, 30),
        gate_min_dbfs=st.floats(-100, 0),
        num_threads=st.integers(1, 4),
    ),
    logging=st.builds(LoggingConfig, level=st.sampled_from(["debug", "info", "warning", "error"])),
)


@given(valid_configs)
def test_any_valid_config_round_trips(config: Config) -> None:
    assert parse_config(tomllib.loads(config_to_toml(config))) == config


# The command line


def test_cli_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[unit]\nid = "pole-7"\n')
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: ok\n"
    assert err == ""


def test_cli_check_prints_every_problem_on_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[audio]\nchunk_ms = 5000\nsource = "alsa"\n[camera]\n')
    assert main(["config", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: audio.chunk_ms = 5000: must be between 10 and 1000 (milliseconds)",
        f'{path}: audio.source = "alsa": must be one of "pyaudio", "file"',
        f"{path}: [camera]: unknown section; allowed sections: "
        "audio, detect, health, homeassistant, logging, mqtt, outbox, position, unit",
    ]


def test_cli_check_syntax_error_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[audio]\nchunk_ms = \n")
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: line 2, column 12: invalid TOML")
    assert "Traceback" not in err

    assert main(["config", "check", str(tmp_path / "absent.toml")]) == 1
    assert "file not found" in capsys.readouterr().err


def test_cli_show_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[unit]\nid = "pole-7"\n[detect]\nnum_threads = 2\n')
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"# Effective configuration: {path}" in out
    assert parse_config(tomllib.loads(out)) == load_config(path)


def test_cli_show_a_bad_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[detect]\nnum_threads = 9\n")
    assert main(["config", "show", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}: detect.num_threads = 9: must be between 1 and 4 (threads)\n"


def test_cli_show_without_a_config_file_prints_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "absent.toml"
    monkeypatch.setattr(edge.config, "DEFAULT_CONFIG_PATH", absent)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# No {absent}: these are the built-in defaults.\n")
    assert parse_config(tomllib.loads(out)) == Config()


def test_cli_show_reads_the_default_path_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(edge.config, "DEFAULT_CONFIG_PATH", write(tmp_path, '[unit]\nid = "pole-3"\n'))
    assert main(["config", "show"]) == 0
    assert 'id = "pole-3"\n' in capsys.readouterr().out


def test_cli_defaults_is_a_valid_commented_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "defaults"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# polewatch configuration. Copy to /etc/polewatch/polewatch.toml")
    path = write(tmp_path, out)
    assert load_config(path) == Config()
    assert main(["config", "check", str(path)]) == 0


def test_cli_config_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["config"])
    assert exited.value.code == 2
    assert "ACTION" in capsys.readouterr().err
