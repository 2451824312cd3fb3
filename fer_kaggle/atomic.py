"""Write outputs so that an error or an interrupt never leaves a half-written file behind."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_write_bytes", "staged_directory"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    # mkstemp creates files with mode 0600; give outputs the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder whose files move into ``target`` on success.

    The temporary folder sits beside ``target`` (same file system, so each move is an
    atomic rename). On any exception it is deleted and ``target`` is left as it was.
    Files already in ``target`` with other names are kept.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield staging
        target.mkdir(exist_ok=True)
        for item in sorted(staging.iterdir()):
            os.replace(item, target / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
