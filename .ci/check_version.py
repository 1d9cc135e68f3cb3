"""The version lives once, in Cargo.toml; the installed package must report the same one."""

import importlib.metadata
import sys
import tomllib
from pathlib import Path

import bidcore

root = Path(__file__).resolve().parent.parent
cargo = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["package"]["version"]
pyproject = tomllib.loads((root / "pyproject.toml").read_text())["project"]
found = {
    "Cargo.toml": cargo,
    "bidcore.__version__": bidcore.__version__,
    "installed metadata": importlib.metadata.version("bidcore"),
}
if "version" in pyproject or "version" not in pyproject.get("dynamic", []):
    sys.exit("pyproject.toml must take its version from Cargo (dynamic = ['version'])")
if len(set(found.values())) != 1:
    sys.exit(f"versions disagree: {found}")
print(f"version {cargo} everywhere")
