"""The release wheel, installed the way users get it: from a package index.

Builds the wheel and sdist with maturin (the release profile: fat LTO, one codegen unit,
unwinding panics), serves them from a local pypiserver on 127.0.0.1, uploads them with twine,
installs bidcore from that index alone into a fresh virtualenv, and parses a request with it.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REQUEST = b'{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.25}]}'

pytestmark = [pytest.mark.wheel, pytest.mark.slow, pytest.mark.timeout(900)]


def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh wheel and sdist of the working tree (cargo's cache makes a rebuild cheap)."""
    out = tmp_path_factory.mktemp("dist")
    _run(BIN / "maturin", "build", "--release", "--sdist", "--out", out, "--quiet")
    return out


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A pypiserver on 127.0.0.1 with uploads open, without fallback to the public index."""
    packages = tmp_path_factory.mktemp("index")
    port = _free_port()
    server = subprocess.Popen(
        [
            BIN / "pypi-server",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--authenticate",
            ".",
            "--passwords",
            ".",
            "--disable-fallback",
            packages,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/simple/", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "pypiserver exited"
                assert time.monotonic() < deadline, "pypiserver did not come up"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_sdist_carries_everything_a_source_build_needs(dist: Path) -> None:
    (sdist,) = dist.glob("bidcore-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "rust/bidcore-core/src/lib.rs",
        "rust/bidcore-py/src/lib.rs",
        "bidcore/__init__.py",
        "bidcore/_core.pyi",
        "bidcore/py.typed",
    ):
        assert needed in names, f"{needed} missing from the sdist"
    assert not any(name.startswith("tests/fixtures") for name in names), "fixtures are not shipped"


def test_the_wheel_is_typed_and_reports_its_platform(dist: Path) -> None:
    (wheel,) = dist.glob("bidcore-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "bidcore/py.typed" in names
    assert "bidcore/_core.pyi" in names
    assert any(n.startswith("bidcore/_core.") and n.endswith(".so") for n in names)
    # `bidcore serve`'s embedded default and the decision log's published schema ship too.
    for data in (
        "bidcore/demo/bidder.toml",
        "bidcore/demo/request.json",
        "bidcore/demo/models/ctr/model.txt",
        "bidcore/demo/models/ctr/manifest.json",
        "bidcore/demo/models/cvr/reference.json",
        "bidcore/schemas/decision-v1.json",
    ):
        assert data in names, f"{data} missing from the wheel"
    report = _run(BIN / "auditwheel", "show", wheel)
    print(f"\nauditwheel show {wheel.name}:\n{report}", file=sys.stderr)
    assert "manylinux" in report, report


def _runtime_requirements(wheel: Path) -> list[str]:
    """The wheel's own `Requires-Dist` (extras left out), pinned to the versions installed here."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    names = [
        re.split(r"[<>=!~; \[]", line.removeprefix("Requires-Dist: "))[0]
        for line in lines
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    ]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def test_installs_from_the_index_and_parses(dist: Path, index: str, tmp_path: Path) -> None:
    # The index serves bidcore and its runtime dependencies, so the install needs nothing else.
    packages_env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    (wheel,) = dist.glob("bidcore-*.whl")
    requirements = _runtime_requirements(wheel)
    assert any(r.startswith("msgspec==") for r in requirements), requirements
    mirror = tmp_path / "mirror"
    _run(
        BIN / "python", "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--dest", mirror, *requirements, env=packages_env,
    )  # fmt: skip
    uploads = [*dist.iterdir(), *mirror.iterdir()]
    _run(
        BIN / "twine", "upload", "--non-interactive", "--repository-url", f"{index}/",
        "--username", "ci", "--password", "ci", *uploads,
    )  # fmt: skip

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(
        python, "-m", "pip", "install", "--quiet", "--no-cache-dir",
        "--index-url", f"{index}/simple/", "bidcore", env=packages_env,
    )  # fmt: skip
    script = (
        "import json, bidcore, sys; "
        f"body = {REQUEST!r}; "
        "bidcore.validate_request(body); "
        "print(json.dumps([bidcore.__file__, bidcore.inspect_request(body)]))"
    )
    location, view = msgspec.json.decode(_run(python, "-c", script, cwd=tmp_path))
    assert str(venv) in location, "imported from the fresh virtualenv, not the source tree"
    assert view["imp"][0]["bidfloor"] == 0.25
    assert view["imp"][0]["bidfloorcur"] == "USD"
    shutil.rmtree(venv)
