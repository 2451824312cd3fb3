"""Kaggle submission files: write them with a metadata JSON beside each, read and validate them.

A submission is a CSV with the header ``id,<label column>`` and one row per test id,
the label an integer class 0-6. Validation follows what Kaggle rejects (wrong header,
malformed rows, labels out of range, duplicate, missing or extra ids) and names the first
offending row in spreadsheet numbering: the header is row 1.
"""

import csv
import io
import json
import logging
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fer_kaggle.atomic import atomic_write_text
from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.errors import DataError

__all__ = [
    "DEFAULT_LABEL_COLUMN",
    "Submission",
    "write_submission",
    "read_submission",
    "check_submission_ids",
    "metadata_path",
    "read_metadata",
    "git_commit",
]

logger = logging.getLogger(__name__)

DEFAULT_LABEL_COLUMN = "label"


@dataclass
class Submission:
    """A validated submission file.

    Attributes:
        path: the CSV file.
        ids: int64 (N,) ids in file order.
        labels: int64 (N,) predicted classes.
        rows: int64 (N,) spreadsheet row number of each id (header = row 1).
    """

    path: Path
    ids: np.ndarray
    labels: np.ndarray
    rows: np.ndarray


def metadata_path(submission_path: Path) -> Path:
    """Return the metadata JSON written beside a submission: ``x.csv`` -> ``x.json``."""
    return Path(submission_path).with_suffix(".json")


def git_commit(directory: Path | None = None) -> str | None:
    """Return the commit hash of the git checkout that contains ``directory`` (default: the working directory).

    Returns None when ``directory`` is not inside a git checkout or git is not installed.
    """
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else None


def write_submission(
    path: Path,
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    metadata: dict[str, Any],
    label_column: str = DEFAULT_LABEL_COLUMN,
) -> Path:
    """Write a Kaggle submission CSV and its metadata JSON (:func:`metadata_path`), both atomically.

    Rows are sorted by id. The JSON gets ``metadata`` plus the file name, label column,
    row count and the UTC time of writing.

    Raises:
        ValueError: ids and labels differ in length, an id repeats, or a label is outside 0-6.
    """
    ids = np.asarray(ids, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if ids.shape != labels.shape:
        raise ValueError(f"ids {ids.shape} and labels {labels.shape} must have the same shape")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids must be unique")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must be classes 0-{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}")
    _check_label_column(label_column)

    order = np.argsort(ids, kind="stable")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", label_column])
    writer.writerows(zip(ids[order].tolist(), labels[order].tolist()))

    path = Path(path)
    record = {
        "submission": path.name,
        "label_column": label_column,
        "rows": int(len(ids)),
        **metadata,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(path, buffer.getvalue())
    atomic_write_text(metadata_path(path), json.dumps(record, indent=2, default=str) + "\n")
    logger.info("wrote %s (%d rows)", path, len(ids))
    return path


def _check_label_column(label_column: str) -> None:
    if not label_column or label_column == "id" or any(character in label_column for character in ',"\n\r'):
        raise DataError(f"--label-column: invalid column name {label_column!r}; use a plain name such as 'label' or 'emotion'")


def read_metadata(submission_path: Path) -> dict[str, Any] | None:
    """Return the metadata JSON beside a submission, or None when there is none.

    Raises:
        DataError: the JSON exists but cannot be parsed.
    """
    path = metadata_path(submission_path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable submission metadata ({error}); write the submission again ('make submission')") from None


def read_submission(path: Path, *, label_column: str = DEFAULT_LABEL_COLUMN) -> Submission:
    """Read and validate the format of a submission CSV; ids are checked by :func:`check_submission_ids`.

    Blank lines are skipped and fields are stripped of surrounding spaces. A UTF-8
    byte-order mark is accepted.

    Raises:
        DataError: missing file, header other than ``id,<label_column>``, a row without
            exactly two fields, an id that is not an integer, a label that is not an
            integer 0-6, or an id that repeats. The message names the first such row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: submission not found; write it with 'make submission' or check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable submission ({error}); expected a UTF-8 CSV with header 'id,{label_column}'") from None

    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    expected_header = ["id", label_column]
    if header is None or [field.strip() for field in header] != expected_header:
        found = ",".join(header) if header else "an empty file"
        raise DataError(f"{path}: row 1: header is {found!r}, expected 'id,{label_column}' (set the label column with --label-column)")

    ids: list[int] = []
    labels: list[int] = []
    rows: list[int] = []
    first_row_of: dict[int, int] = {}
    for fields in reader:
        row = reader.line_num
        if not fields or all(not field.strip() for field in fields):
            continue
        if len(fields) != 2:
            raise DataError(f"{path}: row {row}: expected 2 fields (id,{label_column}), got {len(fields)}: {','.join(fields)!r}")

        id_text, label_text = (field.strip() for field in fields)
        face_id = _parse_int(id_text)
        if face_id is None:
            raise DataError(f"{path}: row {row}: id {id_text!r} is not an integer")
        label = _parse_int(label_text)
        if label is None or not 0 <= label < NUM_CLASSES:
            raise DataError(f"{path}: row {row}: label {label_text!r} is not a class 0-{NUM_CLASSES - 1}")
        if face_id in first_row_of:
            raise DataError(f"{path}: row {row}: id {face_id} repeats (first at row {first_row_of[face_id]}); write one row per test id")

        first_row_of[face_id] = row
        ids.append(face_id)
        labels.append(label)
        rows.append(row)

    return Submission(path, np.array(ids, dtype=np.int64), np.array(labels, dtype=np.int64), np.array(rows, dtype=np.int64))


def _parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def check_submission_ids(submission: Submission, expected_ids: np.ndarray, *, source: str = "the solution") -> None:
    """Raise DataError unless the submission has exactly one row for each expected id.

    Args:
        submission: a submission from :func:`read_submission` (ids already unique).
        expected_ids: the test ids to predict.
        source: where ``expected_ids`` come from, for the message.

    Raises:
        DataError: an id that is not expected (naming its row), or expected ids missing
            (naming the count and the smallest missing id).
    """
    expected_ids = np.asarray(expected_ids, dtype=np.int64)
    extra = ~np.isin(submission.ids, expected_ids)
    if extra.any():
        first = int(np.argmax(extra))
        raise DataError(
            f"{submission.path}: row {submission.rows[first]}: id {submission.ids[first]} is not a test id of {source} "
            f"({int(extra.sum())} such rows); remove rows for ids that are not in the test set"
        )

    missing = np.setdiff1d(expected_ids, submission.ids)
    if len(missing):
        raise DataError(
            f"{submission.path}: {len(missing)} test ids of {source} have no row, the smallest is id {missing[0]}; "
            "write one row per test id"
        )
