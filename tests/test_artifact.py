"""``bidcore.artifact.verify``: a damaged artifact is refused with a ModelError naming the
artifact and what is wrong, whatever the damage."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from bidcore import artifact
from bidcore.artifact import verify, write_manifest
from bidcore.compile import build_artifact
from bidcore.errors import ModelError
from bidcore.testing.models import TINY, ModelSpec, model_path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good artifact with every file (numeric-only tiny model: compiles in half a second)."""
    root = tmp_path_factory.mktemp("artifact")
    model = model_path(ModelSpec(categorical=False, size=TINY), root / "models")
    spec = root / "features.toml"
    spec.write_text(
        "".join(f'[[features]]\nname = "f{j}"\nnumber = "imp.bidfloor"\n' for j in range(40))
    )
    return build_artifact(
        model, root / "ctr", features=spec, version="1", cache_dir=root / "cache", progress=False
    )


@pytest.fixture
def copy(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the good artifact, to damage."""
    return Path(shutil.copytree(built, tmp_path / "ctr"))


def _refused(root: Path, reason: str) -> None:
    with pytest.raises(ModelError) as caught:
        verify(root)
    message = str(caught.value)
    assert message.startswith(f"{root}: "), message
    assert reason in message, message


def _edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_a_good_artifact_verifies(built: Path) -> None:
    manifest = verify(built)
    assert sorted(manifest.files) == [
        "compiled/predictor.so",
        "features.toml",
        "metadata.json",
        "model.txt",
        "reference.json",
    ]
    for name, entry in manifest.files.items():
        assert entry.bytes == (built / name).stat().st_size
        assert entry.sha256 == artifact.sha256_file(built / name)
    assert artifact.read_manifest(built) == manifest


def test_a_truncated_model_is_refused(copy: Path) -> None:
    model = copy / "model.txt"
    size = model.stat().st_size
    model.write_bytes(model.read_bytes()[: size // 2])
    _refused(copy, f"model.txt has {size // 2} bytes, manifest.json says {size} (truncated)")


def test_a_flipped_byte_in_the_library_is_refused(copy: Path) -> None:
    library = copy / "compiled" / "predictor.so"
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0x01
    library.write_bytes(bytes(data))
    _refused(copy, "compiled/predictor.so has SHA-256 ")
    _refused(copy, "(corrupt or modified)")


def test_a_missing_file_is_refused(copy: Path) -> None:
    (copy / "reference.json").unlink()
    _refused(copy, "reference.json is listed in manifest.json but missing")


def test_a_manifest_listing_a_file_never_written_is_refused(copy: Path) -> None:
    _edit_json(
        copy / "manifest.json",
        lambda m: m["files"].update(  # type: ignore[attr-defined]
            {"compiled/extra.so": {"sha256": "0" * 64, "bytes": 1}}
        ),
    )
    _refused(copy, "compiled/extra.so is listed in manifest.json but missing")


def test_a_file_the_manifest_does_not_list_is_refused(copy: Path) -> None:
    (copy / "compiled" / "other.so").write_bytes(b"\x7fELF")
    _refused(copy, "compiled/other.so is not listed in manifest.json")


def test_a_required_file_missing_from_manifest_and_disk_is_refused(copy: Path) -> None:
    (copy / "metadata.json").unlink()
    write_manifest(copy)
    _refused(copy, "manifest.json does not list metadata.json")


def test_a_manifest_path_outside_the_artifact_is_refused(copy: Path) -> None:
    _edit_json(
        copy / "manifest.json",
        lambda m: m["files"].update(  # type: ignore[attr-defined]
            {"../model.txt": {"sha256": "0" * 64, "bytes": 1}}
        ),
    )
    _refused(copy, "manifest.json lists '../model.txt', which is not a plain path")


def test_a_missing_or_unparseable_manifest_is_refused(copy: Path) -> None:
    manifest = copy / "manifest.json"
    manifest.write_text('{"format": 1, "files": ')
    _refused(copy, "manifest.json is not valid JSON: Input data was truncated")
    manifest.write_text('{"format": 2, "files": {}}')
    _refused(copy, "manifest.json: format 2 is not supported")
    manifest.unlink()
    _refused(copy, "manifest.json is missing")


def test_corrupt_metadata_is_refused_by_its_checksum(copy: Path) -> None:
    (copy / "metadata.json").write_text("{not json")
    _refused(copy, "metadata.json has ")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.clear(), "metadata.json: Object missing required field `format`"),
        (lambda m: m.pop("num_trees"), "Object missing required field `num_trees`"),
        (lambda m: m.update(num_trees="ten"), "Expected `int`, got `str` - at `$.num_trees`"),
        (lambda m: m.update(num_class=0), "num_class must be >= 1, got 0"),
        (lambda m: m.update(format=2), "format 2 is not supported"),
        (lambda m: m.update(created_at="yesterday"), "Invalid RFC3339"),
        (lambda m: m["toolchain"].pop("gcc"), "missing required field `gcc`"),
        (lambda m: m.update(reference_rows="mine"), "Invalid enum value 'mine'"),
        (
            lambda m: m.update(compiled_refused="no gcc"),
            "exactly one of compiled and compiled_refused must be set",
        ),
    ],
)
def test_metadata_with_a_bad_key_is_refused(
    copy: Path, change: Callable[[dict[str, object]], None], reason: str
) -> None:
    _edit_json(copy / "metadata.json", change)
    write_manifest(copy)  # the checksums match: only the content is wrong
    _refused(copy, reason)


def test_unparseable_metadata_is_refused_even_with_matching_checksums(copy: Path) -> None:
    (copy / "metadata.json").write_bytes(b"\x00garbage")
    write_manifest(copy)
    _refused(copy, "metadata.json is not valid JSON: ")


def test_metadata_claiming_a_library_that_is_absent_is_refused(copy: Path) -> None:
    shutil.rmtree(copy / "compiled")
    write_manifest(copy)
    _refused(copy, "metadata.json says compiled: true, but compiled/predictor.so is not there")


def test_a_broken_reference_is_refused(copy: Path) -> None:
    _edit_json(
        copy / "reference.json",
        lambda r: r["score"].update(counts=[1]),  # type: ignore[attr-defined]
    )
    write_manifest(copy)
    _refused(copy, "reference.json: ")
    _refused(copy, "edges for 1 counts - at `$.score`")


def test_not_a_directory_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nothing", "not a directory")


def test_the_structs_round_trip(built: Path) -> None:
    metadata = artifact.read_metadata(built)
    assert msgspec.json.decode(msgspec.json.encode(metadata), type=artifact.Metadata) == metadata
    reference = artifact.read_reference(built)
    assert reference.score.counts
