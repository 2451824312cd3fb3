"""Tiny trained runs for the analysis and report tests: synthetic data, 1-epoch models, an experiment file.

Training takes a few seconds: two folds of a tiny residual CNN and one fold of a tiny
fully connected baseline. So the analysis has a best model, a second fold to choose
from, and a DNN to draw beside it.
"""

from dataclasses import dataclass
from pathlib import Path

import yaml

from fer_kaggle.data.prepare import prepare
from fer_kaggle.experiment import RunConfig
from fer_kaggle.folds import make_folds, write_folds
from fer_kaggle.synth import write_synthetic_csv
from fer_kaggle.train import train_fold

K = 3

#: Small variants of the trained models, so that one epoch takes about a second.
TINY_RUNS: dict[str, dict] = {
    "cnn": {"arch": "resnet_seed", "kwargs": {"width": 4, "depths": [1, 1]}},
    "mlp": {"arch": "dnn", "kwargs": {"width": 16}},
}


@dataclass
class TinyExperiment:
    """An experiment file whose runs have finished folds (cnn: 0 and 1, mlp: 0)."""

    root: Path
    experiment: Path
    data_dir: Path
    folds_path: Path
    runs_dir: Path


def tiny_run(name: str) -> RunConfig:
    """Return the run config of one of :data:`TINY_RUNS`, trained for 1 epoch."""
    settings = {"epochs": 1, "batch_size": 32, "lr": 0.003, "patience": 50, "ema": False}
    return RunConfig.model_validate({"name": name, "model": TINY_RUNS[name], "train": settings})


def build_tiny_experiment(root: Path) -> TinyExperiment:
    """Write synthetic data, folds, run configs and an experiment file, and train the runs."""
    csv_path = write_synthetic_csv(root / "raw", n_train=150, n_public=20, n_private=20, seed=3)
    faces, _ = prepare([csv_path], root / "prepared")
    folds_path = root / "folds" / "folds.csv"
    write_folds(make_folds(faces, k=K, seed=0), folds_path, data_fingerprint=faces.fingerprint(), k=K, seed=0)

    models_dir = root / "configs" / "models"
    models_dir.mkdir(parents=True)
    for name in TINY_RUNS:
        (models_dir / f"{name}.yaml").write_text(yaml.safe_dump(tiny_run(name).model_dump(mode="json")))
    experiment = root / "configs" / "experiment.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "data": str(root / "prepared"),
                "folds": str(folds_path),
                "runs_dir": str(root / "runs"),
                "models": ["models/cnn.yaml", "models/mlp.yaml"],
            }
        )
    )

    for name, fold in (("cnn", 0), ("cnn", 1), ("mlp", 0)):
        train_fold(
            tiny_run(name), data_dir=root / "prepared", folds_path=folds_path, fold=fold, runs_dir=root / "runs", progress=False
        )
    return TinyExperiment(root, experiment, root / "prepared", folds_path, root / "runs")
