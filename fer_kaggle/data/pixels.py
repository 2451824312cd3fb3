"""Parse FER2013 ``pixels`` strings (2,304 space-separated integers) into uint8 images.

The fast path joins all rows into one string and parses it with a single numpy call, so
35,887 faces take a few seconds. Only when that fails does a slow per-row pass run, to
name the first offending row.
"""

from pathlib import Path

import numpy as np

from fer_kaggle.constants import IMAGE_SIZE, NUM_PIXELS
from fer_kaggle.data.table import spreadsheet_row
from fer_kaggle.errors import DataError

__all__ = ["parse_pixels"]

_ALLOWED_CHARS = b"0123456789 \t"


def parse_pixels(values: np.ndarray, path: Path, column: str = "pixels") -> np.ndarray:
    """Parse a column of pixel strings into an array of shape (N, 48, 48), dtype uint8.

    Args:
        values: object array of strings (NaN for a missing field), one per data row.
        path: the file the values come from, for error messages.
        column: the column name, for error messages.

    Raises:
        DataError: a missing field, a non-integer token, a value outside 0-255, or a row
            without exactly 2,304 values; the message names the first such row.
    """
    missing = np.array([not isinstance(value, str) for value in values])
    if missing.any():
        row = spreadsheet_row(int(missing.argmax()))
        raise DataError(f"{path}: row {row}: column {column!r} is empty; expected {NUM_PIXELS} space-separated values 0-255")

    joined = " ".join(values)
    leftover = joined.encode("ascii", errors="replace").translate(None, _ALLOWED_CHARS)
    space_counts = np.fromiter((value.strip().count(" ") for value in values), dtype=np.int64, count=len(values))
    if leftover or (space_counts != NUM_PIXELS - 1).any():
        # Tabs or repeated spaces also land here; the per-row check accepts them.
        _check_rows(values, path, column)

    flat = np.fromstring(joined, dtype=np.int64, sep=" ")  # text mode is not deprecated
    if flat.size != len(values) * NUM_PIXELS:
        _check_rows(values, path, column)
        raise DataError(f"{path}: column {column!r} could not be parsed as {NUM_PIXELS} integers per row")

    out_of_range = (flat < 0) | (flat > 255)
    if out_of_range.any():
        position = int(out_of_range.argmax())
        row, pixel = divmod(position, NUM_PIXELS)
        raise DataError(
            f"{path}: row {spreadsheet_row(row)}: pixel {pixel + 1} is {flat[position]}, expected an integer 0-255"
        )

    return flat.astype(np.uint8).reshape(len(values), IMAGE_SIZE, IMAGE_SIZE)


def _check_rows(values: np.ndarray, path: Path, column: str) -> None:
    """Raise :class:`DataError` for the first row whose pixels do not parse (the slow path)."""
    for index, value in enumerate(values):
        tokens = value.split()
        row = spreadsheet_row(index)
        for position, token in enumerate(tokens):
            if not token.isdigit():
                raise DataError(
                    f"{path}: row {row}: pixel {position + 1} is {token[:20]!r}, "
                    f"expected {NUM_PIXELS} space-separated integers 0-255 in column {column!r}"
                )
        if len(tokens) != NUM_PIXELS:
            raise DataError(
                f"{path}: row {row}: column {column!r} has {len(tokens)} values, expected {NUM_PIXELS} "
                f"({IMAGE_SIZE}x{IMAGE_SIZE}); the row is truncated or from another data set"
            )
