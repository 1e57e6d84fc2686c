"""The configuration schema (TOML), its one generic validator, and the effective-config writer.

Each ``[section]`` of the file is a frozen dataclass below. Every field is declared with :func:`setting`,
which keeps its doc, unit and allowed values in the field metadata; :func:`parse_config` reads those to check
any section, so a new section is one more dataclass plus one line in :class:`Config` (see :class:`Section`).

The file is strict: unknown sections and keys, wrong types and out-of-range values are errors, all of them
reported at once, each naming the key, the bad value and what is allowed. Nothing here reads the environment
or caches a config; the caller passes the :class:`Config` on.
"""

from __future__ import annotations

import difflib
import math
import re
import textwrap
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from edge.errors import ConfigError
from edge.transport.topics import RESERVED_UNIT_IDS

DEFAULT_CONFIG_PATH = Path("/etc/polewatch/polewatch.toml")

_SPEC = "polewatch"
"""Key of the :class:`FieldSpec` in a dataclass field's metadata."""

T = TypeVar("T")


@dataclass(frozen=True)
class FieldSpec:
    """What a setting means and which values it allows, beyond its Python type."""

    doc: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    """Bounds themselves are not allowed (``minimum < value < maximum``)."""
    auto: float | None = None
    """A value outside the bounds that is still allowed, meaning "choose automatically" (e.g. 0)."""
    pattern: str | None = None
    """Regular expression the whole string must match."""


def setting(
    default: T,
    doc: str,
    *,
    unit: str = "",
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
    auto: float | None = None,
    pattern: str | None = None,
) -> T:
    """Declare one config key; choices come from a ``Literal[...]`` annotation, not from here."""
    spec = FieldSpec(doc, unit, minimum, maximum, exclusive, auto, pattern)
    return field(default=default, metadata={_SPEC: spec})


@dataclass(frozen=True)
class Section:
    """Base of every ``[section]`` dataclass.

    To add a section: write a frozen dataclass deriving from this, with a docstring (it becomes the section's
    comment in generated files) and every field declared with :func:`setting`; field types may be ``str``,
    ``int``, ``float``, ``bool`` or a ``Literal`` of strings. Then add it as a field of :class:`Config`.
    """

    def check(self) -> list[tuple[str, str]]:
        """Rules that involve several keys, as ``(key, problem)`` pairs.

        Only called when every key of the section is valid on its own.
        """
        return []


@dataclass(frozen=True)
class UnitConfig(Section):
    """Identity of this pole unit."""

    id: str = setting(
        "polewatch-dev",
        "Unit id used in MQTT topics and event ids (lowercase letters, digits and '-')",
        pattern=r"[a-z0-9-]{1,64}",
    )
    signing_key: str = setting(
        "/etc/polewatch/keys/signing.pem",
        "Ed25519 private key (PEM) that signs events and media messages; made by `python -m tools.pki issue-unit`",
    )

    def check(self) -> list[tuple[str, str]]:
        if self.id in RESERVED_UNIT_IDS:
            return [("id", "is reserved for the broker's ACL; choose another unit id")]
        return []


@dataclass(frozen=True)
class PositionConfig(Section):
    """Where the pole stands; a surveyed position beats a GPS fix for a unit that never moves."""

    surveyed: bool = setting(False, "true: lat/lon/alt_m below are the surveyed position of this pole")
    lat: float = setting(0.0, "Latitude (WGS84)", unit="degrees", minimum=-90, maximum=90)
    lon: float = setting(0.0, "Longitude (WGS84)", unit="degrees", minimum=-180, maximum=180)
    alt_m: float = setting(0.0, "Height above the WGS84 ellipsoid", unit="metres", minimum=-500, maximum=9000)
    accuracy_m: float = setting(0.5, "Horizontal accuracy of the survey", unit="metres", minimum=0, maximum=10_000)


@dataclass(frozen=True)
class HomeAssistantConfig(Section):
    """Optional Home Assistant MQTT discovery (an event entity per unit)."""

    enabled: bool = setting(False, "Announce this unit to Home Assistant and re-announce when it restarts")
    discovery_prefix: str = setting(
        "homeassistant", "Home Assistant's discovery prefix", pattern=r"[A-Za-z0-9_/-]{1,64}"
    )


@dataclass(frozen=True)
class AudioConfig(Section):
    """Where audio comes from and how much of it is kept in RAM."""

    source: Literal["pyaudio", "file"] = setting(
        "pyaudio", 'Live microphone through PortAudio ("pyaudio") or replay of an audio file ("file")'
    )
    device: str = setting("", 'PortAudio input device: part of its name, or its index; "" = default input')
    device_rate: int = setting(
        0,
        "Sample rate to open the device at; 0 = the device's default (audio is resampled to 16000 Hz)",
        unit="Hz",
        minimum=8000,
        maximum=192_000,
        auto=0,
    )
    chunk_ms: int = setting(100, "Audio per read", unit="milliseconds", minimum=10, maximum=1000)
    file: str = setting("", 'Audio file to replay; required when source = "file"')
    realtime: bool = setting(True, "Replay the file at the pace of a microphone (false = as fast as it can)")
    loop: bool = setting(False, "Replay the file forever")
    ring_seconds: float = setting(
        30.0,
        "Raw audio kept in RAM (privacy bound: nothing older exists)",
        unit="seconds",
        minimum=5,
        maximum=120,
    )
    reopen_interval_s: float = setting(
        2.0, "Wait between attempts to reopen a lost microphone", unit="seconds", minimum=0.1, maximum=60
    )

    def check(self) -> list[tuple[str, str]]:
        if self.source == "file" and not self.file:
            return [("file", 'required when audio.source = "file"; set it to the path of the audio file')]
        return []


@dataclass(frozen=True)
class DetectConfig(Section):
    """The gunshot classifier, its onset gate and how impulses are grouped into detections."""

    model: str = setting("", 'Path to the .tflite model; "" = the model shipped with polewatch')
    threshold: float = setting(
        0.0,
        "Classifier score needed for a gunshot; 0 = the threshold in the model's metadata",
        minimum=0,
        maximum=1,
        exclusive=True,
        auto=0,
    )
    burst_gap_s: float = setting(
        2.0, "Gunshot impulses closer than this form one detection", unit="seconds", minimum=0.2, maximum=10
    )
    round_score: float = setting(
        0.5,
        "Score at which an impulse inside an open burst counts as one more round (the first needs the threshold)",
        minimum=0,
        maximum=1,
    )
    gate_rise_db: float = setting(
        7.0, "Rise above the recent background the onset gate needs", unit="dB", minimum=3, maximum=30
    )
    gate_min_dbfs: float = setting(
        -90.0,
        "Impulses quieter than this are ignored (-90: none but the 16-bit floor)",
        unit="dBFS",
        minimum=-100,
        maximum=0,
    )
    texture_s: float = setting(
        2.0,
        "A run of shot-like impulses (rain on metal, rattling) older than this cannot open a detection; 0 = off",
        unit="seconds",
        minimum=0,
        maximum=60,
    )
    texture_louder_db: float = setting(
        10.0,
        "An impulse this much louder than the run it falls into still opens a detection (a shot in the rain)",
        unit="dB",
        minimum=0,
        maximum=60,
    )
    num_threads: int = setting(1, "TFLite interpreter threads", unit="threads", minimum=1, maximum=4)


@dataclass(frozen=True)
class MqttConfig(Section):
    """Connection to the MQTT broker that carries events to central (contract v1)."""

    host: str = setting("", 'Broker host name or address; "" = no broker (messages wait in the outbox)')
    port: int = setting(8883, "Broker port: 8883 for TLS, 1883 without", unit="TCP port", minimum=1, maximum=65535)
    prefix: str = setting(
        "polewatch/v1",
        "Topic prefix shared by every unit of a deployment (no '+', '#' or trailing '/')",
        pattern=r"[^+#\s]*[^+#/\s]",
    )
    keepalive_s: int = setting(
        30, "Longest silence before the broker declares the unit gone", unit="seconds", minimum=5, maximum=1200
    )
    tls: bool = setting(True, "Mutual TLS: the broker's CA plus this unit's certificate and key")
    ca_file: str = setting("", "CA certificate (PEM) the broker's certificate must chain to; required with tls")
    cert_file: str = setting("", "This unit's certificate (PEM, CN = unit id); required with tls")
    key_file: str = setting("", "Private key of cert_file (PEM); required with tls")
    client_id: str = setting("", 'MQTT client id; "" = the unit id', pattern=r"[A-Za-z0-9_.-]{0,64}")
    inflight: int = setting(
        20, "Messages sent but not yet acknowledged by the broker", unit="messages", minimum=1, maximum=1000
    )
    reconnect_min_s: int = setting(
        1, "First wait before reconnecting after the broker is lost", unit="seconds", minimum=1, maximum=60
    )
    reconnect_max_s: int = setting(
        60,
        "Longest wait between reconnect attempts (the wait doubles up to this)",
        unit="seconds",
        minimum=1,
        maximum=3600,
    )

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append(("reconnect_max_s", f"must be at least reconnect_min_s ({self.reconnect_min_s})"))
        if not self.host:
            return problems
        if self.tls:
            problems += [
                (key, "required when mqtt.tls = true; set it to the path of the PEM file")
                for key in ("ca_file", "cert_file", "key_file")
                if not getattr(self, key)
            ]
            if self.port == 1883:
                problems.append(("port", "1883 is the plain MQTT port; with tls = true use the TLS port (8883)"))
        elif self.port == 8883:
            problems.append(("port", "8883 is the MQTT TLS port; with tls = false use 1883, or set tls = true"))
        return problems


@dataclass(frozen=True)
class OutboxConfig(Section):
    """The on-disk queue every message passes through; a message leaves it only when the broker acknowledged it."""

    path: str = setting("/data/polewatch/outbox.sqlite", "SQLite file of the outbox, on the data partition")
    max_mb: float = setting(
        256.0,
        "Size above which health, then replies/status, then media messages are dropped (events never are)",
        unit="MB",
        minimum=1,
        maximum=100_000,
    )


@dataclass(frozen=True)
class HealthConfig(Section):
    """Periodic health reports on {prefix}/{unit}/health."""

    interval_s: int = setting(60, "Time between health reports", unit="seconds", minimum=10, maximum=3600)


@dataclass(frozen=True)
class LoggingConfig(Section):
    """Logging of the polewatch service."""

    level: Literal["debug", "info", "warning", "error"] = setting("info", "Lowest level that is logged")


@dataclass(frozen=True)
class Config:
    """The whole configuration; each field is one ``[section]`` of the TOML file."""

    unit: UnitConfig = field(default_factory=UnitConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    position: PositionConfig = field(default_factory=PositionConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


# Loading and validation

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def load_config(path: Path | None = None) -> Config:
    """Read and validate a TOML config file (``None``: :data:`DEFAULT_CONFIG_PATH`).

    Raises :class:`ConfigError` when the file is missing, unreadable, not TOML or not a valid config.
    """
    path = DEFAULT_CONFIG_PATH if path is None else path
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"file not found; create it with: polewatch config defaults > {path}"], source) from None
    except IsADirectoryError:
        raise ConfigError(["is a directory, not a TOML file"], source) from None
    except PermissionError:
        raise ConfigError(["permission denied; make it readable by the polewatch user"], source) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"byte {exc.start}: not UTF-8 text; save the file as UTF-8"], source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_describe_toml_error(exc)], source) from None
    return parse_config(data, source)


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    where = ""
    position = _TOML_POSITION.search(message)
    if position:
        message = message[: position.start()]
        where = f"line {position[1]}, column {position[2]}: "
    hint = 'text values need "quotes", true/false are lowercase, each key once per section'
    return f"{where}invalid TOML: {message}; {hint}"


def parse_config(data: dict[str, Any], source: str = "") -> Config:
    """Validate TOML data (as from ``tomllib``) into a :class:`Config`.

    Raises :class:`ConfigError` listing every problem; ``source`` (usually the file name) is put in it.
    """
    section_types = _section_types()
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name not in section_types:
            problems.append(_unknown_top_level(name, table, section_types))
        elif not isinstance(table, dict):
            problems.append(f"{name} = {format_value(table)}: must be a section; write it as [{name}]")
        else:
            section, section_problems = _parse_section(name, section_types[name], table)
            problems += section_problems
            sections[name] = section
    if problems:
        raise ConfigError(problems, source)
    return replace(Config(), **sections)


def _section_types() -> dict[str, type[Section]]:
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _unknown_top_level(name: str, value: object, section_types: dict[str, type[Section]]) -> str:
    allowed = ", ".join(sorted(section_types))
    if isinstance(value, dict):
        return f"[{name}]: unknown section{_did_you_mean(name, section_types)}; allowed sections: {allowed}"
    owners = [section for section, cls in section_types.items() if name in _field_names(cls)]
    if owners:
        return f"{name}: key outside any section; move it under [{owners[0]}]"
    return f"{name}: unknown key outside any section; settings go in sections: {allowed}"


def _field_names(section_type: type[Section]) -> list[str]:
    return [f.name for f in fields(section_type)]


def _parse_section(name: str, section_type: type[Section], table: dict[str, Any]) -> tuple[Section, list[str]]:
    """The section built from ``table`` (invalid keys left at their defaults) and the problems found."""
    hints = get_type_hints(section_type)
    specs: dict[str, FieldSpec] = {f.name: f.metadata[_SPEC] for f in fields(section_type)}
    problems: list[str] = []
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in specs:
            problems.append(
                f"{name}.{key}: unknown key{_did_you_mean(key, specs)}; "
                f"allowed keys in [{name}]: {', '.join(sorted(specs))}"
            )
            continue
        problem = _check_value(value, hints[key], specs[key])
        if problem:
            problems.append(f"{name}.{key} = {format_value(value)}: {problem}")
        else:
            values[key] = float(value) if hints[key] is float else value
    section = replace(section_type(), **values)
    if not problems:
        for key, problem in section.check():
            problems.append(f"{name}.{key} = {format_value(getattr(section, key))}: {problem}")
    return section, problems


def _did_you_mean(name: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_value(value: object, kind: object, spec: FieldSpec) -> str | None:
    """Why ``value`` is not allowed for a field of type ``kind``, or None when it is."""
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if isinstance(value, str) and value in choices:
            return None
        close = difflib.get_close_matches(str(value).strip().lower(), choices, n=1)
        hint = f" (did you mean {format_value(close[0])}?)" if close else ""
        return f"must be {describe_allowed(kind, spec)}{hint}"
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is bool:
        return None if isinstance(value, bool) else f"must be true or false{_unquote_hint(value, kind)}"
    if kind is str:
        if not isinstance(value, str):
            return 'must be a string in "quotes"' + (f' (write "{value}")' if is_number else "")
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            return f"must match {spec.pattern}"
        return None
    if (kind is int and not isinstance(value, int)) or not is_number:
        return f"must be {describe_allowed(kind, spec)}{_unquote_hint(value, kind)}"
    assert isinstance(value, int | float)
    if not math.isfinite(value):
        return f"must be a finite number: {_describe_range(spec)}{_unit_suffix(spec)}"
    if not _in_range(value, spec):
        return f"must be {_describe_range(spec)}{_unit_suffix(spec)}"
    return None


def _unquote_hint(value: object, kind: object) -> str:
    """A hint for the common slip of quoting a number or boolean ("100", "true")."""
    if not isinstance(value, str):
        return ""
    if kind is bool:
        return "; write it without quotes" if value.strip().lower() in ("true", "false") else ""
    try:
        float(value)
    except ValueError:
        return ""
    return "; write it without quotes"


def _in_range(value: float, spec: FieldSpec) -> bool:
    if spec.auto is not None and value == spec.auto:
        return True
    if spec.exclusive:
        above = spec.minimum is None or value > spec.minimum
        below = spec.maximum is None or value < spec.maximum
    else:
        above = spec.minimum is None or value >= spec.minimum
        below = spec.maximum is None or value <= spec.maximum
    return above and below


def describe_allowed(kind: object, spec: FieldSpec) -> str:
    """The values a field allows, in words: "a whole number between 10 and 1000 (milliseconds)"."""
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(format_value(choice) for choice in get_args(kind))
    if kind is bool:
        return "true or false"
    if kind is str:
        return f"a string matching {spec.pattern}" if spec.pattern else "a string"
    noun = "a whole number" if kind is int else "a number"
    bounds = _describe_range(spec)
    return f"{noun} {bounds}{_unit_suffix(spec)}" if bounds else f"{noun}{_unit_suffix(spec)}"


def _describe_range(spec: FieldSpec) -> str:
    low, high = spec.minimum, spec.maximum
    if low is not None and high is not None:
        bounds = f"between {low:g} and {high:g}" + (" (exclusive)" if spec.exclusive else "")
    elif low is not None:
        bounds = f"greater than {low:g}" if spec.exclusive else f"at least {low:g}"
    elif high is not None:
        bounds = f"less than {high:g}" if spec.exclusive else f"at most {high:g}"
    else:
        return ""
    return f"{bounds}, or {spec.auto:g}" if spec.auto is not None else bounds


def _unit_suffix(spec: FieldSpec) -> str:
    return f" ({spec.unit})" if spec.unit else ""


# Writing TOML


def format_value(value: object) -> str:
    """A value as it would be written in TOML (used both in error messages and in generated files)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {format_value(item)}" for key, item in value.items()) + "}"
    return str(value)


def _toml_string(text: str) -> str:
    # TOML basic strings forbid raw control characters (except tab) and DEL; \uXXXX covers all of them.
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def config_to_toml(config: Config, header: str = "") -> str:
    """The config as TOML, each key after a comment with its meaning, unit, allowed values and default.

    ``header`` (one or more lines) becomes a comment at the top. Loading the result gives back ``config``.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for section_field in fields(config):
        section: Section = getattr(config, section_field.name)
        hints = get_type_hints(type(section))
        if lines:
            lines.append("")
        lines += [f"# {(type(section).__doc__ or '').strip()}", f"[{section_field.name}]"]
        for key_field in fields(section):
            spec: FieldSpec = key_field.metadata[_SPEC]
            allowed = describe_allowed(hints[key_field.name], spec)
            lines += [f"# {line}" for line in textwrap.wrap(spec.doc + ".", width=106)]
            lines.append(f"#   Allowed: {allowed}. Default: {format_value(key_field.default)}.")
            lines.append(f"{key_field.name} = {format_value(getattr(section, key_field.name))}")
    return "\n".join(lines) + "\n"
