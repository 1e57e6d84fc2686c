"""``polewatch verify``: one line per message, exit 0 only when every signed message verifies."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.transport import signing
from edge.transport.messages import build_media, build_status
from tests.test_schemas import SHA, detection, event
from tools import pki


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city")
    pki.init_ca(root / "ca", name="Test City CA", days=30)
    authority = pki.load_authority(root / "ca")
    for unit in ("pole-17", "pole-18"):
        pki.issue_unit(unit, authority, root / unit, days=10)
        key = signing.load_private_key(root / unit / "signing.pem")
        signing.save_public_key(key.public_key(), root / unit / "signing.pub.pem")
    pki.init_ca(root / "rogue", name="Test City CA", days=30)
    return root


def messages(city: Path, unit: str = "pole-17") -> list[dict[str, Any]]:
    key = signing.load_private_key(city / unit / "signing.pem")
    new = event(detection((0,), phase="new"), unit_id=unit, seq=1)
    final = event(unit_id=unit, seq=2)
    media = build_media(
        event_id=new["event_id"],
        unit_id=unit,
        seq=1,
        kind="audio",
        state="ready",
        sha256=SHA,
        size_bytes=9,
        duration_s=5.0,
        uri="https://media.example.org/a.flac",
    )
    return [signing.sign(m, key) for m in (new, final, media)]


def jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_all_good_with_a_public_key(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = jsonl(tmp_path / "m.jsonl", messages(city))
    code, lines, _ = run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), str(file))
    key_id = messages(city)[0]["signature"]["key_id"]
    event_id = messages(city)[0]["event_id"]
    assert code == 0
    assert lines == [
        f"OK event {event_id} phase=new unit=pole-17 seq=1 key={key_id}",
        f"OK event {event_id} phase=final unit=pole-17 seq=2 key={key_id}",
        f"OK media {event_id} kind=audio state=ready unit=pole-17 key={key_id}",
    ]


def test_one_tampered_line_fails_the_run(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = messages(city)
    items[1]["rounds"] = 2
    items[1]["impulses"].pop()
    file = jsonl(tmp_path / "m.jsonl", items)
    code, lines, _ = run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), str(file))
    assert code == 1
    assert lines[0].startswith("OK event") and lines[2].startswith("OK media")
    assert lines[1].startswith("FAIL event ") and "phase=final" in lines[1]
    assert lines[1].endswith("signature does not match the content: the message was altered after signing")


def test_certificate_and_ca(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = jsonl(tmp_path / "m.jsonl", messages(city))
    cert, ca = str(city / "pole-17" / "signing.crt"), str(city / "ca" / "ca.crt")
    code, lines, _ = run(capsys, "--cert", cert, "--ca", ca, str(file))
    assert code == 0 and len(lines) == 3 and all(line.startswith("OK ") for line in lines)
    code, lines, _ = run(capsys, "--cert", cert, "--ca", str(city / "rogue" / "ca.crt"), str(file))
    assert code == 1 and all("was not issued by" in line for line in lines)
    code, lines, _ = run(capsys, "--cert", cert, "--ca", ca, "--at", "2099-01-01T00:00:00Z", str(file))
    assert code == 1 and all(line.startswith("FAIL ") and "not at 2099-01-01" in line for line in lines)


def test_keys_are_chosen_by_key_id(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = jsonl(tmp_path / "m.jsonl", messages(city, "pole-17") + messages(city, "pole-18"))
    certs = ["--cert", str(city / "pole-17" / "signing.crt"), "--cert", str(city / "pole-18" / "signing.crt")]
    code, lines, _ = run(capsys, *certs, "--ca", str(city / "ca" / "ca.crt"), str(file))
    assert code == 0 and len(lines) == 6
    code, lines, _ = run(capsys, "--key", str(city / "pole-18" / "signing.pub.pem"), str(file))
    assert code == 1
    assert [line.split()[0] for line in lines] == ["FAIL"] * 3 + ["OK"] * 3
    assert "signed with key" in lines[0]


def test_a_unit_cannot_sign_for_another(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = signing.load_private_key(city / "pole-18" / "signing.pem")
    impostor = signing.sign(event(unit_id="pole-17"), key)
    file = jsonl(tmp_path / "m.jsonl", [impostor])
    code, lines, _ = run(capsys, "--cert", str(city / "pole-18" / "signing.crt"), str(file))
    assert code == 1 and "is not issued to 'pole-17'" in lines[0]


def test_stdin_single_pretty_message_and_array(
    tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = str(city / "pole-17" / "signing.pub.pem")
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(messages(city)[0], indent=2)))
    code, lines, _ = run(capsys, "--key", key, "-")
    assert code == 0 and len(lines) == 1
    array = tmp_path / "all.json"
    array.write_text(json.dumps(messages(city), indent=1))
    code, lines, _ = run(capsys, "--key", key, str(array))
    assert code == 0 and len(lines) == 3


def test_mosquitto_sub_v_lines_check_the_topic(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new, final, media = messages(city)
    status = build_status(state="online", since_ns=0, firmware="0.1.0", model=None)
    file = tmp_path / "capture.txt"
    file.write_text(
        f"polewatch/v1/pole-17/event {json.dumps(new)}\n"
        f"polewatch/v1/pole-17/status {json.dumps(status)}\n"
        f"polewatch/v1/pole-18/event {json.dumps(final)}\n"
        f"polewatch/v1/pole-17/media {json.dumps(media)}\n"
    )
    code, lines, _ = run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), str(file))
    assert code == 1
    assert lines[0].startswith("OK event")
    assert lines[1] == "SKIP status: status messages are not signed"
    assert lines[2].startswith("FAIL event") and "is not the event topic of unit pole-17" in lines[2]
    assert lines[3].startswith("OK media")


def test_garbage_and_schema_errors_are_reported(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = messages(city)[0]
    bad_schema = {**good, "seq": 0}
    file = tmp_path / "m.jsonl"
    file.write_text(
        json.dumps(good)
        + "\n{not json\n[1]\n"
        + json.dumps(bad_schema)
        + "\n"
        + '{"schema": "polewatch/event/1", "a": 1, "a": 2}\n'
    )
    code, lines, _ = run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), str(file))
    assert code == 1
    assert lines[0].startswith("OK ")
    assert lines[1].startswith("FAIL line 2: not JSON")
    assert lines[2] == "FAIL line 3: not a JSON object"
    assert lines[3].startswith("FAIL event") and "at $.seq" in lines[3]
    assert lines[4].startswith("FAIL line 5: not JSON (duplicate key 'a')")
    code, lines, _ = run(capsys, "--no-schema", "--key", str(city / "pole-17" / "signing.pub.pem"), str(file))
    assert lines[3].startswith("FAIL event") and "altered" in lines[3]


def test_usage_errors(tmp_path: Path, city: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = jsonl(tmp_path / "m.jsonl", messages(city))
    assert run(capsys, str(file))[0] == 2
    assert run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), "--ca", "x.crt", str(file))[0] == 2
    assert run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), "--at", "soon", str(file))[0] == 2
    code, _, err = run(capsys, "--key", str(city / "pole-17" / "signing.pem"), str(file))
    assert code == 1 and "not a PEM public key" in err
    code, _, err = run(capsys, "--key", str(tmp_path / "none.pem"), str(file))
    assert code == 1 and "does not exist" in err
    only_status = jsonl(tmp_path / "s.jsonl", [build_status(state="online", since_ns=0, firmware="1", model=None)])
    code, lines, err = run(capsys, "--key", str(city / "pole-17" / "signing.pub.pem"), str(only_status))
    assert code == 1 and lines[0].startswith("SKIP") and "no signed message" in err


def test_runs_as_a_command(tmp_path: Path, city: Path) -> None:
    file = jsonl(tmp_path / "m.jsonl", messages(city))
    done = subprocess.run(
        [sys.executable, "-m", "edge", "verify", "--key", str(city / "pole-17" / "signing.pub.pem"), str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("OK ") == 3
