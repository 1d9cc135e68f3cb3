"""``bidcore validate``: in-process through ``bidcore.cli.main``, and as users run it (the
``bidcore`` console script and ``python -m bidcore.cli``) in a subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bidcore.cli import main

BIN = Path(sys.executable).parent
VALID = b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}}]}'
NEGATIVE_FLOOR = b'{"id":"r2","imp":[{"id":"1","banner":{},"bidfloor":-1}]}'
FLOOR_ERROR = "imp[0].bidfloor: a floor must be finite and >= 0, got -1 [floor]"
NOT_JSON = b'{"id":"r3","imp":['


def _write(path: Path, *bodies: bytes) -> str:
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = main(["validate", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


# --- In process --------------------------------------------------------------------------------


def test_a_valid_json_file_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = _write(tmp_path / "request.json", VALID)
    assert _run(capsys, name) == (0, [f"{name}: OK"], "1 checked, 1 OK, 0 failed\n")


def test_an_invalid_json_file_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _write(tmp_path / "request.json", NEGATIVE_FLOOR)
    status, lines, err = _run(capsys, name)
    assert (status, lines) == (1, [f"{name}: ERROR {FLOOR_ERROR}"])
    assert err == "1 checked, 0 OK, 1 failed\n"


def test_a_json_file_holds_one_request_even_over_several_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = tmp_path / "pretty.json"
    name.write_text(json.dumps(json.loads(VALID), indent=2))
    assert _run(capsys, str(name))[:2] == (0, [f"{name}: OK"])


def test_a_jsonl_file_is_checked_line_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Blank lines are skipped but counted, so the numbers are the file's line numbers.
    name = _write(tmp_path / "requests.jsonl", VALID, b"", NEGATIVE_FLOOR, b"   ", NOT_JSON, VALID)
    status, lines, err = _run(capsys, name)
    assert status == 1
    assert lines[0] == f"{name}:1: OK"
    assert lines[1] == f"{name}:3: ERROR {FLOOR_ERROR}"
    assert lines[2].startswith(f"{name}:5: ERROR imp: ")  # the body ends inside imp
    assert lines[2].endswith(" [json]")
    assert lines[3:] == [f"{name}:6: OK"]
    assert err == "4 checked, 2 OK, 2 failed\n"


def test_ndjson_and_crlf_lines_are_lines_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = tmp_path / "requests.ndjson"
    name.write_bytes(VALID + b"\r\n" + VALID + b"\r\n")
    assert _run(capsys, str(name))[:2] == (0, [f"{name}:1: OK", f"{name}:2: OK"])


def test_lines_reads_any_file_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _write(tmp_path / "requests.txt", VALID, NEGATIVE_FLOOR)
    status, lines, _ = _run(capsys, "--lines", name)
    assert (status, lines) == (1, [f"{name}:1: OK", f"{name}:2: ERROR {FLOOR_ERROR}"])
    # Without --lines the same file is one body: two JSON values in a row are not a request.
    status, lines, _ = _run(capsys, name)
    assert status == 1
    assert lines[0].startswith(f"{name}: ERROR $: trailing characters")


def test_quiet_prints_failures_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "good.json", VALID)
    mixed = _write(tmp_path / "mixed.jsonl", VALID, NEGATIVE_FLOOR)
    assert _run(capsys, "-q", good) == (0, [], "1 checked, 1 OK, 0 failed\n")
    status, lines, _ = _run(capsys, "--quiet", good, mixed)
    assert (status, lines) == (1, [f"{mixed}:2: ERROR {FLOOR_ERROR}"])


def test_stdin_is_read_as_json_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(VALID + b"\n" + NEGATIVE_FLOOR + b"\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    status, lines, _ = _run(capsys, "-")
    assert (status, lines) == (1, ["-:1: OK", f"-:2: ERROR {FLOOR_ERROR}"])


def test_files_are_reported_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _write(tmp_path / "b.json", VALID)
    second = _write(tmp_path / "a.jsonl", VALID, VALID)
    status, lines, err = _run(capsys, first, second)
    assert (status, lines) == (0, [f"{first}: OK", f"{second}:1: OK", f"{second}:2: OK"])
    assert err == "3 checked, 3 OK, 0 failed\n"


def test_limits_can_be_set_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = b'{"id":"2","video":{"mimes":["video/mp4"]}}'
    two_imps = b'{"id":"r","imp":[{"id":"1","banner":{}},' + video + b"]}"
    name = _write(tmp_path / "request.json", two_imps)
    assert _run(capsys, name)[0] == 0
    status, lines, _ = _run(capsys, "--max-imps", "1", name)
    assert (status, lines) == (
        1,
        [f"{name}: ERROR imp: 2 imps, more than the limit of 1 [imp_count]"],
    )
    status, lines, _ = _run(capsys, "--max-body-bytes", "10", name)
    assert lines == [
        f"{name}: ERROR $: body is {len(two_imps) + 1} bytes, more than the limit of 10 [body_size]"
    ]
    status, lines, _ = _run(capsys, "--max-depth", "3", "--max-string-bytes", "1", name)
    assert status == 1
    assert lines[0].startswith(f"{name}: ERROR ")


def test_validate_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 2
    assert "FILE" in capsys.readouterr().err


# --- As users run it ---------------------------------------------------------------------------


def _command(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, input=stdin.decode(), capture_output=True, text=True, timeout=60, check=False
    )


def test_the_console_script_checks_files(tmp_path: Path) -> None:
    single = _write(tmp_path / "request.json", VALID)
    lines = _write(tmp_path / "requests.jsonl", VALID, NEGATIVE_FLOOR)
    result = _command(str(BIN / "bidcore"), "validate", single, lines)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{single}: OK",
        f"{lines}:1: OK",
        f"{lines}:2: ERROR {FLOOR_ERROR}",
    ]
    assert result.stderr == "3 checked, 2 OK, 1 failed\n"


def test_the_console_script_reads_stdin_quietly() -> None:
    result = _command(str(BIN / "bidcore"), "validate", "-q", "-", stdin=VALID + b"\n" + VALID)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr == "2 checked, 2 OK, 0 failed\n"


def test_the_module_runs_as_a_script(tmp_path: Path) -> None:
    name = _write(tmp_path / "requests.txt", NEGATIVE_FLOOR, VALID)
    result = _command(sys.executable, "-m", "bidcore.cli", "validate", "--lines", name)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [f"{name}:1: ERROR {FLOOR_ERROR}", f"{name}:2: OK"]


def test_the_console_script_without_a_command_shows_usage() -> None:
    result = _command(str(BIN / "bidcore"))
    assert result.returncode == 2
    assert result.stderr.startswith("usage: bidcore")


# --- bidcore config ------------------------------------------------------------------------------

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "bidder.toml"
CONFIG = """
[[campaigns]]
id = "c1"
goal = "cpm"
cpm = 1.5
max_bid = 2
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
"""


def _config(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    status = main(["config", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_config_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from bidcore.config import schema

    status = main(["config", "schema"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert json.loads(out) == schema()
    assert out == json.dumps(schema(), indent=2) + "\n"


def test_config_check_says_ok_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "bidder.toml"
    toml.write_text(CONFIG)
    yaml_file = tmp_path / "bidder.yaml"
    yaml_file.write_text(
        "campaigns:\n- id: c1\n  goal: cpm\n  cpm: 1.5\n  max_bid: 2\n  creatives:\n"
        "  - {id: cr1, media: native, adomain: [shop.example]}\n"
    )
    names = [str(toml), str(yaml_file), str(EXAMPLE_CONFIG)]
    assert _config(capsys, "check", *names) == (0, [f"OK {name}" for name in names], "")


def test_config_check_names_the_file_and_the_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.toml"
    good.write_text(CONFIG)
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"campaigns": [{"id": "c1", "goal": "cpm", "cpm": 1.2345678, "max_bid": 2,'
        ' "creatives": [{"id": "cr1", "media": "native", "adomain": ["a.example"]}]}]}'
    )
    status, lines, err = _config(capsys, "check", str(bad), str(good))
    assert (status, err) == (1, "")
    assert lines == [
        f"{bad}: campaigns[0]: cpm: 1.2345678 has more than 6 decimal places",
        f"OK {good}",
    ]


def test_config_check_reports_unusable_files_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.toml"
    other = tmp_path / "bidder.ini"
    other.write_text(CONFIG)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[campaigns]\n")
    status, lines, _ = _config(capsys, "check", str(missing), str(other), str(broken))
    assert status == 1
    assert lines[0] == f"{missing}: No such file or directory"
    assert lines[1] == f"{other}: unknown config format '.ini' (toml, json, yaml)"
    assert lines[2].startswith(f"{broken}: not valid TOML: ")


def test_config_needs_an_action_and_check_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["config"], ["config", "check"]):
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == 2
        assert "usage: bidcore config" in capsys.readouterr().err


def test_the_console_script_checks_configs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("campaigns: []\nbidder: {currency: usd}\n")
    result = _command(str(BIN / "bidcore"), "config", "check", str(EXAMPLE_CONFIG), str(bad))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"OK {EXAMPLE_CONFIG}",
        f"{bad}: bidder: currency must be a 3-letter upper-case code, got 'usd'",
    ]
    schema = _command(sys.executable, "-m", "bidcore.cli", "config", "schema")
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["$ref"] == "#/$defs/Config"


BIDDER = """
[[campaigns]]
id = "c1"
goal = "cpm"
cpm = 2
max_bid = 5
[[campaigns.creatives]]
id = "cr1"
media = "banner"
w = 300
h = 250
adomain = ["shop.example"]
"""


def test_bid_answers_each_request_and_summarises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bidder.toml"
    config.write_text(BIDDER)
    bids = b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}]}'
    lines = _write(tmp_path / "requests.jsonl", bids, bids.replace(b"0.5", b"9"), NEGATIVE_FLOOR)
    assert main(["bid", str(config), lines]) == 0
    out, err = capsys.readouterr()
    first, second, third = out.splitlines()
    assert json.loads(first)["seatbid"][0]["bid"][0]["price"] == 2
    assert second == f"{lines}:2: no bid"
    assert third.startswith(f"{lines}:3: invalid: imp[0].bidfloor")
    assert err.startswith("3 requests, 2 valid, 1 bids (50.0% of valid)")
    assert "below_floor 1" in err
    assert "invalid 1" in err


def test_bid_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bidder.toml"
    config.write_text(BIDDER.replace("max_bid = 5", "max_bid = -5"))
    assert main(["bid", str(config), "-"]) == 2
    assert "campaigns[0]: max_bid must be positive" in capsys.readouterr().err


LAYERS = """
[[experiments.layers]]
name = "models"
seed = "models-2026"

[[experiments.layers.experiments]]
key = "ctr-v7"
coverage = 0.5
arms = [{name = "control"}, {name = "ctr-v7"}]
"""


def test_experiments_assign_prints_each_ids_arm_as_the_library_assigns_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bidcore.experiments import assign, loads_layers

    path = tmp_path / "layers.toml"
    path.write_text(LAYERS)
    ids = [f"user-{i}" for i in range(40)] + ["ユーザー", "\U0001f600"]
    assert main(["experiments", "assign", str(path), *ids]) == 0
    lines = capsys.readouterr().out.splitlines()
    (layer,) = loads_layers(LAYERS)
    expected = []
    for unit in ids:
        a = assign(unit, layer)
        assert a is not None  # one experiment over the whole layer: every id is in it
        arm = a.arm if a.arm is not None else "-"
        expected.append(f"{unit}\tmodels\tctr-v7\t{arm}\t{a.bucket}")
    assert lines == expected
    arms = {line.split("\t")[3] for line in lines}
    assert arms == {"control", "ctr-v7", "-"}  # coverage 0.5: some ids are past it


def test_experiments_assign_says_why_the_layers_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "layers.toml"
    path.write_text(LAYERS.replace('{name = "control"}', '{name = "control", weight = 0.9}'))
    assert main(["experiments", "assign", str(path), "u1"]) == 2
    assert "experiments.layers[0].experiments[0]" in capsys.readouterr().err


def test_experiments_report_needs_decisions_with_arms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "decisions.jsonl"
    record = {"v": 1, "ts": 1.0, "request": "r1", "bid": False, "reason": "no_campaign",
              "nbr": 0, "error": None, "currency": "USD", "test": False, "latency_ns": 1000,
              "arms": {}, "models": {}, "imps": []}  # fmt: skip
    log.write_text(json.dumps(record) + "\n")
    assert main(["experiments", "report", str(log), "-o", str(tmp_path / "out")]) == 1
    assert "no decision carries an experiment arm" in capsys.readouterr().err
    assert main(["experiments", "report", str(tmp_path / "missing"), "-o", str(tmp_path)]) == 2
