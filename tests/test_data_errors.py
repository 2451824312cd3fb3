"""Bad input files: one DataError per kind, naming the file, the row or column, and the fix.

Row numbers follow a spreadsheet: the header is row 1, the first data row is row 2, so
the data row at 0-based index ``i`` is row ``i + 2``.
"""

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import FerFiles, write_csv
from fer_kaggle.data.layouts import read_sources
from fer_kaggle.data.prepare import prepare
from fer_kaggle.errors import DataError

FER2013_HEADER = ["emotion", "pixels", "Usage"]


def read_error(*paths: Path) -> str:
    """Return the message of the DataError that reading ``paths`` raises, failing the test if none is raised."""
    with pytest.raises(DataError) as caught:
        read_sources(list(paths))
    message = str(caught.value)
    assert "\n" not in message
    return message


def write_fer2013_rows(fer_files: FerFiles, rows: list[list[str]], name: str = "fer2013.csv") -> Path:
    return write_csv(fer_files.root / name, FER2013_HEADER, rows)


def set_pixel(rows: list[list[str]], index: int, position: int, token: str) -> None:
    """Replace pixel ``position`` (0-based) of data row ``index`` with ``token``."""
    tokens = rows[index][1].split(" ")
    tokens[position] = token
    rows[index][1] = " ".join(tokens)


# Files that are not CSV files.


def test_missing_file(tmp_path: Path) -> None:
    message = read_error(tmp_path / "fer2013.csv")
    assert "fer2013.csv" in message
    assert "not found" in message


def test_git_lfs_pointer(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 301072766\n"
    )
    message = read_error(path)
    assert str(path) in message
    assert "Git LFS pointer" in message
    assert "git lfs pull" in message


def test_html_page(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_text("<!DOCTYPE html>\n<html><head><title>Sign in | Kaggle</title></head><body></body></html>\n")
    message = read_error(path)
    assert str(path) in message
    assert "HTML page" in message


def make_tar(fer_files: FerFiles, mode: str) -> bytes:
    inner = fer_files.write_fer2013("inner.csv")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        archive.add(inner, arcname="fer2013/fer2013.csv")
    return buffer.getvalue()


@pytest.mark.parametrize(("mode", "command"), [("w", "tar xf"), ("w:gz", "tar xzf")])
def test_tar_saved_as_csv(fer_files: FerFiles, mode: str, command: str) -> None:
    path = fer_files.root / "fer2013.csv"
    path.write_bytes(make_tar(fer_files, mode))
    message = read_error(path)
    assert str(path) in message
    assert "tar archive" in message
    assert command in message


def test_zip_saved_as_csv(fer_files: FerFiles) -> None:
    inner = fer_files.write_fer2013("inner.csv")
    path = fer_files.root / "fer2013.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(inner, arcname="fer2013.csv")
    message = read_error(path)
    assert str(path) in message
    assert "zip archive" in message
    assert "unzip" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"")
    message = read_error(path)
    assert str(path) in message
    assert "empty" in message


def test_header_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fer2013.csv", FER2013_HEADER, [])
    message = read_error(path)
    assert str(path) in message
    assert "no data rows" in message


# Columns and fields.


def test_missing_column_lists_found(fer_files: FerFiles) -> None:
    path = write_csv(fer_files.root / "fer2013.csv", ["emotion", "pixel", "Usage"], fer_files.fer2013_rows())
    message = read_error(path)
    assert str(path) in message
    assert "'pixels'" in message
    assert "found columns: emotion, pixel, Usage" in message


def test_missing_column_in_train_csv(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair(labels=False)
    path = write_csv(folder / "train.csv", ["pixels"], [[row[1]] for row in fer_files.train_rows()])
    message = read_error(folder)
    assert str(path) in message
    assert "'emotion'" in message
    assert "found columns: pixels" in message


@pytest.mark.parametrize("index", [0, 2], ids=["first_row", "third_row"])
def test_row_with_extra_field(fer_files: FerFiles, index: int) -> None:
    rows = fer_files.fer2013_rows()
    rows[index].append("oops")
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert str(path) in message
    assert f"row {index + 2} " in message
    assert "4 fields, expected 3" in message


@pytest.mark.parametrize("index", [0, 2], ids=["first_row", "third_row"])
def test_train_row_with_extra_field(fer_files: FerFiles, index: int) -> None:
    rows = fer_files.train_rows()
    rows[index].append("3")
    path = write_csv(fer_files.root / "train.csv", ["emotion", "pixels"], rows)
    message = read_error(path)
    assert f"row {index + 2} " in message
    assert "3 fields, expected 2" in message
    assert len(message) < 500


def test_blank_line_between_rows(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    rows.insert(3, [])
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert str(path) in message
    assert "row 5 is blank" in message


# Pixels.

BAD_PIXELS = {
    "value_256": ("256", "256"),
    "value_minus_1": ("-1", "-1"),
    "non_numeric": ("abc", "'abc'"),
    "decimal": ("12.5", "'12.5'"),
}


@pytest.mark.parametrize("case", list(BAD_PIXELS))
def test_bad_pixel_value(fer_files: FerFiles, case: str) -> None:
    token, expected_in_message = BAD_PIXELS[case]
    rows = fer_files.fer2013_rows()
    set_pixel(rows, 7, 100, token)
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert str(path) in message
    assert "row 9:" in message
    assert "pixel 101 " in message
    assert expected_in_message in message
    assert "0-255" in message


def test_pixels_2303_values(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    rows[4][1] = rows[4][1].rsplit(" ", 1)[0]
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert "row 6:" in message
    assert "2303 values" in message
    assert "expected 2304" in message


def test_pixels_empty(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    rows[10][1] = ""
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert "row 12:" in message
    assert "'pixels' is empty" in message


def test_bad_pixels_in_test_csv(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair()
    rows = fer_files.test_rows()
    set_pixel(rows, 5, 2303, "300")
    path = write_csv(folder / "test.csv", ["id", "pixels"], rows)
    message = read_error(folder)
    assert str(path) in message
    assert "row 7:" in message
    assert "300" in message


# Labels, Usage and ids.


def test_label_7(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    rows[3][0] = "7"
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert str(path) in message
    assert "row 5:" in message
    assert "'7'" in message
    assert "0-6" in message


def test_label_missing_in_training_row(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    rows[6][0] = ""
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert str(path) in message
    assert "row 8:" in message
    assert "missing" in message


def test_label_missing_in_train_csv(fer_files: FerFiles) -> None:
    rows = fer_files.train_rows()
    rows[1][0] = ""
    path = write_csv(fer_files.root / "train.csv", ["emotion", "pixels"], rows)
    message = read_error(path)
    assert "row 3:" in message
    assert "missing" in message


def test_label_missing_in_test_row_allowed(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    index = len(fer_files.train) + 1
    rows[index][0] = ""
    faces = read_sources([write_fer2013_rows(fer_files, rows)])
    assert faces.labels[index] == -1


def test_unknown_usage_lists_values(fer_files: FerFiles) -> None:
    rows = fer_files.fer2013_rows()
    rows[2][2] = "Train"
    rows[9][2] = "Validation"
    path = write_fer2013_rows(fer_files, rows)
    message = read_error(path)
    assert str(path) in message
    assert "row 4:" in message
    assert "'Train'" in message
    assert "'Validation'" in message
    assert "Training, PublicTest, PrivateTest" in message


def test_duplicate_test_ids(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair(labels=False)
    rows = fer_files.test_rows()
    rows[6][0] = rows[1][0]
    path = write_csv(folder / "test.csv", ["id", "pixels"], rows)
    message = read_error(folder)
    assert str(path) in message
    assert f"id {rows[1][0]} appears more than once" in message
    assert "rows 3, 8" in message


def test_labels_id_not_in_test(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair()
    rows = fer_files.public_label_rows()
    rows[4][0] = "999999"
    path = write_csv(folder / "public_labels.csv", ["id", "emotion"], rows)
    message = read_error(folder)
    assert str(path) in message
    assert "row 6:" in message
    assert "999999" in message
    assert "not in test.csv" in message


def test_labels_file_without_test(fer_files: FerFiles) -> None:
    folder = fer_files.write_kaggle_pair()
    message = read_error(folder / "train.csv", folder / "public_labels.csv")
    assert "public_labels.csv" in message
    assert "test.csv" in message


# Image folders.


def test_undecodable_image(fer_files: FerFiles) -> None:
    root = fer_files.write_image_folders()
    broken = root / "train" / "sad" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG body")
    message = read_error(root)
    assert str(broken) in message
    assert "cannot decode" in message


def test_unknown_class_folder(fer_files: FerFiles) -> None:
    root = fer_files.write_image_folders()
    (root / "train" / "happy").rename(root / "train" / "joy")
    message = read_error(root)
    assert "'joy'" in message
    for accepted in ("angry", "anger", "disgusted", "fearful", "happiness", "sadness", "surprised", "neutral", "0", "6"):
        assert accepted in message


def test_class_folder_digit_7(fer_files: FerFiles) -> None:
    root = fer_files.write_image_folders(class_folders=[str(label) for label in range(7)])
    (root / "train" / "6").rename(root / "train" / "7")
    message = read_error(root)
    assert "'7'" in message


# prepare writes nothing on bad input.


def test_prepare_failure_writes_nothing(fer_files: FerFiles, tmp_path: Path) -> None:
    rows = fer_files.fer2013_rows()
    rows[3][0] = "9"
    path = write_fer2013_rows(fer_files, rows)
    out = tmp_path / "out"
    with pytest.raises(DataError):
        prepare([path], out)
    assert not out.exists()
    assert [entry.name for entry in tmp_path.iterdir()] == ["fer2013.csv"]


def test_prepare_failure_keeps_old_output(fer_files: FerFiles, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare([fer_files.write_fer2013()], out)
    before = {entry.name: entry.read_bytes() for entry in out.iterdir()}

    rows = fer_files.fer2013_rows()
    set_pixel(rows, 0, 0, "999")
    with pytest.raises(DataError):
        prepare([write_fer2013_rows(fer_files, rows, name="bad.csv")], out)
    after = {entry.name: entry.read_bytes() for entry in out.iterdir()}
    assert after == before
    assert not [entry.name for entry in tmp_path.iterdir() if entry.name.startswith(".")]



def test_truncated_gzip(fer_files: FerFiles, tmp_path: Path) -> None:
    complete = fer_files.write_fer2013("fer2013.csv.gz", compress=True)
    truncated = tmp_path / "partial" / "fer2013.csv.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(complete.read_bytes()[: complete.stat().st_size // 2])

    with pytest.raises(DataError, match="truncated or corrupt gzip file") as error:
        read_sources([truncated])

    assert str(truncated) in str(error.value)
