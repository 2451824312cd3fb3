"""Kaggle submission CSVs: writing with metadata, reading back, and each malformed kind."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fer_kaggle.errors import DataError
from fer_kaggle.submission import (
    check_submission_ids,
    git_commit,
    metadata_path,
    read_metadata,
    read_submission,
    write_submission,
)

IDS = np.array([12, 10, 11, 13])
LABELS = np.array([3, 0, 6, 2])


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_round_trip(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "sub.csv", IDS, LABELS, metadata={"blend_method": "mean"})

    submission = read_submission(path)

    order = np.argsort(IDS)
    assert submission.ids.tolist() == IDS[order].tolist()
    assert submission.labels.tolist() == LABELS[order].tolist()
    assert submission.rows.tolist() == [2, 3, 4, 5]
    assert path.read_text().splitlines()[0] == "id,label"


def test_metadata_beside_csv(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "model.csv", IDS, LABELS, metadata={"models": ["cnn"], "oof_accuracy": 0.5})

    metadata = json.loads(metadata_path(path).read_text())

    assert metadata_path(path) == tmp_path / "model.json"
    assert metadata["models"] == ["cnn"]
    assert metadata["rows"] == len(IDS)
    assert metadata["label_column"] == "label"
    assert read_metadata(path) == metadata


def test_label_column_option(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "sub.csv", IDS, LABELS, metadata={}, label_column="emotion")

    assert path.read_text().splitlines()[0] == "id,emotion"
    assert read_submission(path, label_column="emotion").labels.tolist() == [0, 6, 3, 2]


def test_write_rejects_bad_label(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="classes 0-6"):
        write_submission(tmp_path / "sub.csv", IDS, np.array([0, 1, 2, 7]), metadata={})
    assert not (tmp_path / "sub.csv").exists()


def test_blank_lines_and_spaces_accepted(tmp_path: Path) -> None:
    path = write_text(tmp_path / "sub.csv", "\ufeffid, label\n10, 3\n\n11,4\n")

    submission = read_submission(path)

    assert submission.ids.tolist() == [10, 11]
    assert submission.rows.tolist() == [2, 4]


MALFORMED = {
    "wrong header": ("id,emotion\n10,3\n", "row 1: header"),
    "empty file": ("", "row 1: header"),
    "extra field": ("id,label\n10,3\n11,4,5\n", "row 3: expected 2 fields"),
    "missing field": ("id,label\n10\n", "row 2: expected 2 fields"),
    "id not integer": ("id,label\n10,3\nabc,4\n", "row 3: id 'abc'"),
    "label too large": ("id,label\n10,3\n11,7\n", "row 3: label '7'"),
    "label negative": ("id,label\n10,-1\n", "row 2: label '-1'"),
    "label float": ("id,label\n10,3.0\n", "row 2: label '3.0'"),
    "label name": ("id,label\n10,Happy\n", "row 2: label 'Happy'"),
    "duplicate id": ("id,label\n10,3\n11,4\n10,5\n", "row 4: id 10 repeats \\(first at row 2\\)"),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_rejected(kind: str, tmp_path: Path) -> None:
    text, message = MALFORMED[kind]
    path = write_text(tmp_path / "sub.csv", text)

    with pytest.raises(DataError, match=message):
        read_submission(path)


def test_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_submission(tmp_path / "none.csv")


def test_extra_id_names_row(tmp_path: Path) -> None:
    submission = read_submission(write_text(tmp_path / "sub.csv", "id,label\n10,3\n11,4\n99,5\n"))

    with pytest.raises(DataError, match="row 4: id 99 is not a test id"):
        check_submission_ids(submission, np.array([10, 11]))


def test_missing_id_names_smallest(tmp_path: Path) -> None:
    submission = read_submission(write_text(tmp_path / "sub.csv", "id,label\n11,4\n"))

    with pytest.raises(DataError, match="2 test ids .* smallest is id 10"):
        check_submission_ids(submission, np.array([10, 11, 12]))


def test_exact_ids_accepted(tmp_path: Path) -> None:
    submission = read_submission(write_text(tmp_path / "sub.csv", "id,label\n11,4\n10,2\n"))

    check_submission_ids(submission, np.array([10, 11]))


def test_git_commit_outside_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None


def test_git_commit_in_checkout(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
    )
    expected = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()

    assert git_commit(tmp_path) == expected
