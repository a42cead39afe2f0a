"""Version folders and the model-file search order (pure filesystem functions)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ovfast.repository.layout import find_model_file, list_versions


def touch(d: Path, *names: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / n).write_bytes(b"")
    return d


def test_list_versions_skips_non_numbers(tmp_path: Path):
    for n in ("1", "3", "0", "-2", "abc", "10"):
        (tmp_path / n).mkdir()
    (tmp_path / "5").write_text("a file, not a folder")
    assert list_versions(tmp_path) == [1, 3, 10]


def test_list_versions_missing_dir(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="Directory does not exist"):
        list_versions(tmp_path / "nope")


@pytest.mark.parametrize("files,expected", [
    (("m.xml", "m.bin", "m.onnx"), "m.xml"),
    (("m.xml", "m.onnx"), "m.onnx"),  # IR without weights is incomplete
    (("m.onnx", "m.pdmodel", "m.pdiparams"), "m.onnx"),
    (("m.pdmodel", "m.pdiparams", "m.tflite"), "m.pdmodel"),
    (("m.pdmodel", "m.tflite"), "m.tflite"),
    (("frozen.pb", "m.tflite"), "frozen.pb"),
    (("m.tflite",), "m.tflite"),
])
def test_search_order(tmp_path: Path, files, expected):
    d = touch(tmp_path / "1", *files)
    assert find_model_file(d) == d / expected


def test_saved_model_is_the_folder(tmp_path: Path):
    d = touch(tmp_path / "1", "saved_model.pb")
    (d / "variables").mkdir()
    assert find_model_file(d) == d


def test_no_model_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="Could not find file for model"):
        find_model_file(touch(tmp_path / "1", "README.txt"))
