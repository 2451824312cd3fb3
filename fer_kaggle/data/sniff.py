"""Recognise files that are not what their name says before a CSV parser reads them.

Kaggle downloads go wrong in a few typical ways: a Git LFS pointer committed in place of
the data, an HTML login or error page saved under the CSV's name, or the archive itself
(``fer2013.tar.gz``, a Kaggle ``.zip``) renamed. Each gets a message that says what the
file is and how to get the real one.
"""

import gzip
import zipfile
from pathlib import Path

from fer_kaggle.errors import DataError

__all__ = ["check_readable_csv", "is_gzip"]

_GZIP_MAGIC = b"\x1f\x8b"
_LFS_PREFIX = b"version https://git-lfs"
_HEAD_BYTES = 1024


def is_gzip(path: Path) -> bool:
    """Return whether the file starts with the gzip magic number, whatever its name."""
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _read_head(path: Path) -> tuple[bytes, bool]:
    """Return the first bytes of the file's content (decompressed if gzip) and whether it was gzip."""
    if is_gzip(path):
        try:
            with gzip.open(path, "rb") as handle:
                return handle.read(_HEAD_BYTES), True
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: corrupt gzip file ({error}); download it again") from None
    with path.open("rb") as handle:
        return handle.read(_HEAD_BYTES), False


def check_readable_csv(path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` looks like a (possibly gzipped) CSV file.

    Raises:
        DataError: the file is missing, empty, a Git LFS pointer, an HTML page, or a tar,
            zip or gzip-wrapped tar archive.
    """
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a CSV file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes); download it again")

    if zipfile.is_zipfile(path):
        raise DataError(f"{path}: is a zip archive, not a CSV; extract it first (unzip '{path}') and pass the CSV inside")

    head, gzipped = _read_head(path)
    if not head.strip():
        raise DataError(f"{path}: file is empty; download it again")
    if head.startswith(_LFS_PREFIX):
        raise DataError(
            f"{path}: is a Git LFS pointer, not the data; run 'git lfs pull' in its repository "
            "or download the file from the competition's data page"
        )

    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        raise DataError(
            f"{path}: is an HTML page, not a CSV (often a login or error page saved by a browser "
            "or wget); download the file again from the competition's data page while logged in"
        )

    if _looks_like_tar(head):
        how = "tar xzf" if gzipped else "tar xf"
        raise DataError(f"{path}: is a tar archive, not a CSV; extract it first ({how} '{path}') and pass the CSV inside")


def _looks_like_tar(head: bytes) -> bool:
    # POSIX and GNU tar headers carry "ustar" at byte offset 257.
    return len(head) > 262 and head[257:262] == b"ustar"


