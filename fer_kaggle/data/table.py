"""Read a competition CSV into a frame of strings, with spreadsheet row numbers in errors.

Row numbers follow what a spreadsheet shows: the header is row 1, the first data row is
row 2. Accepted as they are: gzip (detected from the content, not the name), CRLF line
ends, a UTF-8 byte-order mark, quoted fields, spaces after commas, trailing blank lines.
"""

import csv
import gzip
import io
import re
import warnings
import zlib
from pathlib import Path

import pandas as pd

from fer_kaggle.data.sniff import check_readable_csv, is_gzip
from fer_kaggle.errors import DataError

__all__ = ["read_table", "spreadsheet_row", "COLUMN_ALIASES"]

#: Column names of other layouts mapped to Kaggle's names (course layout: label, feature).
COLUMN_ALIASES: dict[str, str] = {"label": "emotion", "feature": "pixels", "usage": "Usage"}

_FIELD_COUNT_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def spreadsheet_row(index: int) -> int:
    """Return the spreadsheet row number of the data row at 0-based position ``index``."""
    return index + 2


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV file as strings with normalised column names.

    Column names are stripped and matched case-insensitively; ``label``/``feature``
    become ``emotion``/``pixels`` and ``usage`` becomes ``Usage``. Blank lines at the
    end are dropped; a blank line between data rows is an error, so that row numbers in
    later messages stay exact.

    Raises:
        DataError: unreadable file (see :func:`check_readable_csv`), a row with extra
            fields, a duplicated column, a blank line between rows, or no data rows.
    """
    check_readable_csv(path)

    try:
        with warnings.catch_warnings():
            # When the first data row has more fields than the header, pandas only warns
            # (ParserWarning) and shifts the columns. Make that an error like any other row.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                index_col=False,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
                skip_blank_lines=False,
                encoding="utf-8-sig",
                compression="gzip" if is_gzip(path) else None,
                quoting=csv.QUOTE_MINIMAL,
            )
    except pd.errors.ParserWarning:
        _raise_field_count_error(path)
    except pd.errors.ParserError as error:
        match = _FIELD_COUNT_ERROR.search(str(error))
        if match:
            expected, line, seen = match.groups()
            raise DataError(
                f"{path}: row {line} has {seen} fields, expected {expected} (one per header column); "
                "remove the extra commas or quote the field"
            ) from None
        raise DataError(f"{path}: cannot parse as CSV ({error}); check that it is a comma-separated file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error}); download it again") from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start}); expected a CSV file, check that it is not a binary file"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty; download it again") from None

    frame.columns = [_normalise_column(str(name)) for name in frame.columns]
    duplicated = sorted({name for name in frame.columns if list(frame.columns).count(name) > 1})
    if duplicated:
        raise DataError(f"{path}: column {duplicated[0]!r} appears more than once in the header; keep one")

    return _drop_blank_rows(frame, path)


def _raise_field_count_error(path: Path) -> None:
    """Raise :class:`DataError` for the first row whose field count differs from the header's."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        rows = csv.reader(text, skipinitialspace=True)
        expected = len(next(rows))
        for line, fields in enumerate(rows, start=2):
            if fields and len(fields) != expected:
                raise DataError(
                    f"{path}: row {line} has {len(fields)} fields, expected {expected} (one per header column); "
                    "remove the extra commas or quote the field"
                )
    raise DataError(f"{path}: a row's field count differs from the header's; check the commas")


def _normalise_column(name: str) -> str:
    name = name.strip().strip('"').strip()
    return COLUMN_ALIASES.get(name.lower(), name.lower() if name.lower() in ("emotion", "pixels", "id") else name)


def _drop_blank_rows(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    blank = frame.isna().all(axis=1).to_numpy()
    n_rows = len(frame)
    while n_rows and blank[n_rows - 1]:
        n_rows -= 1
    if blank[:n_rows].any():
        first = int(blank[:n_rows].argmax())
        raise DataError(f"{path}: row {spreadsheet_row(first)} is blank between data rows; delete the blank line")
    if n_rows == 0:
        raise DataError(f"{path}: has a header but no data rows; download it again")
    return frame.iloc[:n_rows].reset_index(drop=True)


def require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    """Raise :class:`DataError` naming the first missing column and the columns found."""
    for column in required:
        if column not in frame.columns:
            found = ", ".join(frame.columns)
            raise DataError(f"{path}: missing required column {column!r}; found columns: {found}")


__all__.append("require_columns")
