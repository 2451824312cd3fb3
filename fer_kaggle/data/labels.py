"""Parse emotion labels and ids from CSV columns, naming the first bad row."""

from pathlib import Path

import numpy as np
import pandas as pd

from fer_kaggle.constants import CLASS_NAMES, NUM_CLASSES
from fer_kaggle.data.faceset import UNKNOWN_LABEL
from fer_kaggle.data.table import spreadsheet_row
from fer_kaggle.errors import DataError

__all__ = ["parse_labels", "parse_ids"]

_CLASS_LIST = ", ".join(f"{index} {name}" for index, name in enumerate(CLASS_NAMES))


def parse_labels(column: pd.Series, path: Path, *, required: np.ndarray | bool = True) -> np.ndarray:
    """Parse an ``emotion`` column into int64 labels, ``UNKNOWN_LABEL`` where empty and allowed.

    Args:
        column: the column as strings, NaN where empty.
        path: the file, for error messages.
        required: whether a label must be present, for all rows or per row (boolean mask).

    Raises:
        DataError: a required label is missing, or a label is not an integer 0-6.
    """
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    empty = column.isna().to_numpy()
    required_mask = np.broadcast_to(np.asarray(required, dtype=bool), empty.shape)

    missing = empty & required_mask
    if missing.any():
        row = spreadsheet_row(int(missing.argmax()))
        raise DataError(f"{path}: row {row}: emotion is missing in a training row; expected an integer 0-6 ({_CLASS_LIST})")

    invalid = ~empty & ~(np.isfinite(numbers) & (numbers == np.round(numbers)) & (numbers >= 0) & (numbers < NUM_CLASSES))
    if invalid.any():
        index = int(invalid.argmax())
        raise DataError(
            f"{path}: row {spreadsheet_row(index)}: emotion is {str(column.iloc[index])[:20]!r}, expected an integer 0-6 ({_CLASS_LIST})"
        )

    labels = np.full(len(column), UNKNOWN_LABEL, dtype=np.int64)
    labels[~empty] = numbers[~empty].astype(np.int64)
    return labels


def parse_ids(column: pd.Series, path: Path) -> np.ndarray:
    """Parse an ``id`` column into unique non-negative int64 ids.

    Raises:
        DataError: an id is missing, not a non-negative integer, or repeated.
    """
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    invalid = ~(np.isfinite(numbers) & (numbers == np.round(numbers)) & (numbers >= 0))
    if invalid.any():
        index = int(invalid.argmax())
        raise DataError(f"{path}: row {spreadsheet_row(index)}: id is {str(column.iloc[index])[:20]!r}, expected a non-negative integer")

    ids = numbers.astype(np.int64)
    repeated = pd.Series(ids).duplicated(keep="first").to_numpy()
    if repeated.any():
        value = ids[int(repeated.argmax())]
        rows = ", ".join(str(spreadsheet_row(int(index))) for index in np.flatnonzero(ids == value)[:5])
        raise DataError(f"{path}: id {value} appears more than once (rows {rows}); ids must be unique")
    return ids
