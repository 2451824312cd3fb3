"""The files of one training run (``runs/<model>/fold<F>/``) and the lock that guards them.

Prediction files are NumPy structured arrays with fields ``id`` (int64) and ``probs``
(float32, one probability per class), so ids travel with the probabilities in one
``.npy`` file that loads without pickle.
"""

import errno
import fcntl
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from fer_kaggle.atomic import atomic_write_bytes, atomic_write_text
from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.errors import ConfigError, DataError

__all__ = [
    "PREDICTION_DTYPE",
    "RunPaths",
    "run_lock",
    "save_predictions",
    "load_predictions",
    "save_checkpoint",
    "write_json",
]

PREDICTION_DTYPE = np.dtype([("id", np.int64), ("probs", np.float32, (NUM_CLASSES,))])


class RunPaths:
    """File names inside one run folder."""

    def __init__(self, runs_dir: Path, name: str, fold: int) -> None:
        self.root = Path(runs_dir) / name / f"fold{fold}"
        self.config = self.root / "config.yaml"
        self.history = self.root / "history.csv"
        self.curves = self.root / "curves.png"
        self.last = self.root / "last.pt"
        self.best = self.root / "best.pt"
        self.oof = self.root / "oof.npy"
        self.test = self.root / "test.npy"
        self.metrics = self.root / "metrics.json"
        self.lock = self.root / ".lock"

    def finished(self) -> bool:
        """Return whether the run wrote its final metrics, which are written after the predictions."""
        return self.metrics.is_file()


@contextmanager
def run_lock(paths: RunPaths) -> Iterator[None]:
    """Hold an exclusive lock on the run folder, or fail at once if another process holds it.

    Raises:
        ConfigError: another process is training into the same folder.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    handle = open(paths.lock, "a+")  # noqa: SIM115 (kept open while the lock is held)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                raise ConfigError(
                    f"{paths.root}: another training process (pid {owner}) is writing this run; "
                    "wait for it to finish or use another --runs-dir"
                ) from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def save_predictions(path: Path, ids: np.ndarray, probs: np.ndarray) -> None:
    """Write ids and class probabilities as one structured ``.npy`` file, atomically."""
    if probs.shape != (len(ids), NUM_CLASSES):
        raise ValueError(f"probs must have shape ({len(ids)}, {NUM_CLASSES}), got {probs.shape}")
    records = np.empty(len(ids), dtype=PREDICTION_DTYPE)
    records["id"] = ids
    records["probs"] = probs
    buffer = io.BytesIO()
    np.save(buffer, records, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a predictions file written by :func:`save_predictions` as (ids, probs).

    Raises:
        DataError: the file is missing or has another layout.
    """
    if not Path(path).is_file():
        raise DataError(f"{path}: predictions not found; train this run first ('make train-all')")
    records = np.load(path, allow_pickle=False)
    if records.dtype != PREDICTION_DTYPE:
        raise DataError(f"{path}: unexpected layout {records.dtype}; expected fields id and probs ({NUM_CLASSES} classes)")
    return records["id"].copy(), records["probs"].astype(np.float64)


def save_checkpoint(path: Path, state: dict) -> None:
    """Save a torch checkpoint atomically, so an interrupt never leaves a truncated file."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
