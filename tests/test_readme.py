"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has a Python example"
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert capsys.readouterr().out == "imp[0].bidfloor floor\n"


def test_the_models_example_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2, "the README has a models example"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIDCORE_CACHE_DIR", str(tmp_path / "cache"))
    models_block = next(b for b in blocks if "build_artifact" in b)
    exec(compile(models_block, "README.md", "exec"), {})
    assert capsys.readouterr().out == "True\n"


def test_the_engine_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    engine_blocks = [b for b in blocks if "bidcore.Engine(" in b]
    assert engine_blocks, "the README has an engine example"
    exec(compile(engine_blocks[0], "README.md", "exec"), {})
    priced, targeting = capsys.readouterr().out.splitlines()
    assert priced == "2.314814 https://win.example/?price=${AUCTION_PRICE}&c=spring-sale"
    assert targeting == "{'spring-sale': 'country'}"


def test_the_experiments_example_is_a_valid_config() -> None:
    from bidcore import config, demo

    section = README.read_text().split("## Experiments", 1)[1]
    (block,) = re.findall(r"```toml\n(.*?)```", section.split("\n## ", 1)[0], flags=re.DOTALL)
    loaded = config.loads(demo.config_path().read_text(encoding="utf-8") + block)
    (layer,) = loaded.experiments.layers
    assert layer.experiments[0].arms[1].models == {"ctr": "models/ctr-v8"}
