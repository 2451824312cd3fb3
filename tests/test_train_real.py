"""Real-data smoke test of the trainer: one fold, one epoch, a few thousand real faces."""

from pathlib import Path

import numpy as np
import pytest

from fer_kaggle.experiment import load_run_config
from fer_kaggle.folds import make_folds, write_folds
from fer_kaggle.runs import load_predictions
from fer_kaggle.train import train_fold

pytestmark = pytest.mark.real_data

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_resnet_seed_one_epoch_on_real_faces(real_prepared, tmp_path: Path) -> None:
    faces, _, prepared_dir = real_prepared
    folds_path = tmp_path / "folds.csv"
    write_folds(make_folds(faces, k=5, seed=0), folds_path, data_fingerprint=faces.fingerprint(), k=5, seed=0)
    run = load_run_config(REPO_ROOT / "configs" / "models" / "resnet_seed.yaml")

    result = train_fold(
        run,
        data_dir=prepared_dir,
        folds_path=folds_path,
        fold=0,
        runs_dir=tmp_path / "runs",
        epochs=1,
        limit=2500,
        progress=False,
    )

    oof_ids, oof_probs = load_predictions(result.paths.oof)
    test_ids, test_probs = load_predictions(result.paths.test)
    train_ids = set(faces.ids[faces.splits == "train"].tolist())
    assert result.metrics["epochs_run"] == 1
    assert result.metrics["n_train"] + result.metrics["n_valid"] == 2500
    assert set(oof_ids.tolist()) <= train_ids
    assert len(test_ids) == 7178
    assert np.allclose(oof_probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.allclose(test_probs.sum(axis=1), 1.0, atol=1e-4)
