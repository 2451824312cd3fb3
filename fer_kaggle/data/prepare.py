"""The ``prepare`` stage: read the competition files, audit them, write the cache."""

import logging
from pathlib import Path

from fer_kaggle.atomic import atomic_write_text, staged_directory
from fer_kaggle.audit import AuditReport, compute_audit
from fer_kaggle.data.faceset import SOLUTION_FILE, FaceSet
from fer_kaggle.data.layouts import read_sources

__all__ = ["prepare"]

logger = logging.getLogger(__name__)


def prepare(sources: list[Path], out_dir: Path) -> tuple[FaceSet, AuditReport]:
    """Read ``sources``, audit them and write the cache, ``solution.csv`` and the audit into ``out_dir``.

    Everything is read and checked before anything is written, and the files are moved
    into ``out_dir`` only once all are complete, so a failure leaves ``out_dir`` as it was.

    Raises:
        DataError: see :func:`fer_kaggle.data.layouts.read_sources`.
    """
    faces = read_sources([Path(source) for source in sources])
    report = compute_audit(faces)

    solution = faces.solution_rows()
    with staged_directory(Path(out_dir)) as staging:
        faces.save(staging)
        report.write(staging)
        if solution:
            lines = ["id,emotion,Usage"] + [f"{face_id},{label},{usage}" for face_id, label, usage in solution]
            atomic_write_text(staging / SOLUTION_FILE, "\n".join(lines) + "\n")
    if not solution:
        stale = Path(out_dir) / SOLUTION_FILE
        if stale.exists():
            stale.unlink()
            logger.info("removed %s: the new data has no test labels", stale)

    logger.info("prepared %d faces into %s", len(faces), out_dir)
    return faces, report
