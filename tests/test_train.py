"""The K-fold trainer on tiny synthetic data: real training steps, real files, real interrupts."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fer_kaggle.data.prepare import prepare
from fer_kaggle.errors import ConfigError, DataError
from fer_kaggle.experiment import RunConfig, load_experiment, load_run_config
from fer_kaggle.device import channels_last_is_safe
from fer_kaggle.folds import make_folds, write_folds
from fer_kaggle.models import list_models
from fer_kaggle.runs import load_predictions
from fer_kaggle.synth import write_synthetic_csv
from fer_kaggle.train import build_model, train_fold
from fer_kaggle.train_all import train_experiment

K = 3

#: Small variants of each registered model, so that one epoch takes about a second.
TINY_KWARGS: dict[str, dict] = {
    "resnet_seed": {"width": 4, "depths": [1, 1]},
    "preact_resnet": {"width": 8, "depths": [1, 1]},
    "timm_resnet18_48": {"depths": [1, 1]},
    "timm_resnet18_48_w32": {"depths": [1, 1]},
    "resnet_fast": {"width": 8, "depths": [1, 1]},
    "dnn": {"width": 16},
}


def tiny_run(name: str = "tiny", arch: str = "resnet_seed", **train: object) -> RunConfig:
    settings = {"epochs": 2, "batch_size": 32, "lr": 0.003, "patience": 50, "ema": True}
    settings.update(train)
    return RunConfig.model_validate(
        {"name": name, "model": {"arch": arch, "kwargs": TINY_KWARGS.get(arch, {})}, "train": settings}
    )


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Prepared synthetic data (150 training faces, 40 test faces) and its K folds."""
    root = tmp_path_factory.mktemp("tiny")
    csv_path = write_synthetic_csv(root / "raw", n_train=150, n_public=20, n_private=20, seed=3)
    faces, _ = prepare([csv_path], root / "prepared")
    folds_path = root / "folds.csv"
    write_folds(make_folds(faces, k=K, seed=0), folds_path, data_fingerprint=faces.fingerprint(), k=K, seed=0)
    return root / "prepared", folds_path


def train_tiny(run: RunConfig, tiny_data: tuple[Path, Path], runs_dir: Path, fold: int = 0, **options: object):
    data_dir, folds_path = tiny_data
    return train_fold(run, data_dir=data_dir, folds_path=folds_path, fold=fold, runs_dir=runs_dir, progress=False, **options)


@pytest.mark.parametrize("arch", list_models())
def test_train_fold_writes_outputs(arch: str, tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    result = train_tiny(tiny_run(arch=arch, epochs=1), tiny_data, tmp_path)
    paths = result.paths

    for path in (paths.config, paths.history, paths.curves, paths.best, paths.oof, paths.test, paths.metrics):
        assert path.is_file(), path
    assert not paths.last.exists()
    history = pd.read_csv(paths.history)
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds"]
    assert len(history) == 1
    ids, probs = load_predictions(paths.test)
    assert len(ids) == 40
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert result.metrics["arch"] == arch


def test_training_lowers_loss(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run(epochs=6, lr=0.01, ema=False, label_smoothing=0.0)
    result = train_tiny(run, tiny_data, tmp_path, limit=None)
    history = pd.read_csv(result.paths.history)

    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_oof_covers_each_id_once(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    data_dir, folds_path = tiny_data
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.yaml").write_text(yaml.safe_dump(tiny_run(epochs=1).model_dump(mode="json")))
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        yaml.safe_dump({"data": str(data_dir), "folds": str(folds_path), "runs_dir": str(tmp_path / "runs"), "models": ["models/tiny.yaml"]})
    )

    results = train_experiment(experiment)

    oof_ids = np.concatenate([load_predictions(result.paths.oof)[0] for result in results])
    folds = pd.read_csv(folds_path)
    assert len(results) == K
    assert len(oof_ids) == len(folds)
    assert sorted(oof_ids.tolist()) == sorted(folds["id"].tolist())


def test_train_all_skips_finished_folds(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run(epochs=1)
    first = train_tiny(run, tiny_data, tmp_path)
    modified = first.paths.metrics.stat().st_mtime_ns

    second = train_tiny(run, tiny_data, tmp_path)

    assert second.skipped
    assert first.paths.metrics.stat().st_mtime_ns == modified


def test_same_seed_same_predictions(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run(epochs=2)
    first = train_tiny(run, tiny_data, tmp_path / "a")
    second = train_tiny(run, tiny_data, tmp_path / "b")

    assert np.array_equal(load_predictions(first.paths.oof)[1], load_predictions(second.paths.oof)[1])
    assert np.array_equal(load_predictions(first.paths.test)[1], load_predictions(second.paths.test)[1])


def test_resume_after_kill(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    """Kill a real training process after its first checkpoint, then resume it to the end."""
    data_dir, folds_path = tiny_data
    epochs = 25
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_run(epochs=epochs).model_dump(mode="json")))
    command = [
        sys.executable, "-m", "fer_kaggle", "train", "--config", str(config), "--fold", "1",
        "--data", str(data_dir), "--folds", str(folds_path), "--runs-dir", str(tmp_path / "runs"),
    ]
    last = tmp_path / "runs" / "tiny" / "fold1" / "last.pt"

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.exists(), "the run finished or failed before its first checkpoint"
    epochs_before = torch.load(last, weights_only=False)["epoch"] + 1
    assert epochs_before < epochs

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((tmp_path / "runs" / "tiny" / "fold1" / "metrics.json").read_text())
    history = pd.read_csv(tmp_path / "runs" / "tiny" / "fold1" / "history.csv")
    assert metrics["epochs_run"] == epochs
    assert history["epoch"].tolist() == list(range(1, epochs + 1))

    # Epochs are reseeded from (seed, fold, epoch), so the resumed run matches an uninterrupted one.
    uninterrupted = train_tiny(tiny_run(epochs=epochs), tiny_data, tmp_path / "uninterrupted", fold=1)
    resumed_oof = load_predictions(tmp_path / "runs" / "tiny" / "fold1" / "oof.npy")[1]
    assert np.allclose(resumed_oof, load_predictions(uninterrupted.paths.oof)[1], atol=1e-5)


def test_resume_rejects_changed_config(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run(epochs=3)
    paths_root = tmp_path / "tiny" / "fold0"
    paths_root.mkdir(parents=True)
    (paths_root / "config.yaml").write_text(yaml.safe_dump({"run": {"name": "other"}}))
    (paths_root / "last.pt").write_bytes(b"")

    with pytest.raises(ConfigError, match="another config"):
        train_tiny(run, tiny_data, tmp_path)


def test_second_writer_is_rejected(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    import fcntl

    root = tmp_path / "tiny" / "fold0"
    root.mkdir(parents=True)
    with open(root / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("12345")
        handle.flush()
        child = subprocess.run(
            [sys.executable, "-c", _LOCK_PROBE, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert "another training process" in child.stdout


_LOCK_PROBE = """
import sys
from pathlib import Path
from fer_kaggle.errors import ConfigError
from fer_kaggle.runs import RunPaths, run_lock
try:
    with run_lock(RunPaths(Path(sys.argv[1]), "tiny", 0)):
        print("acquired")
except ConfigError as error:
    print(error)
"""


def test_fold_out_of_range(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fold 7 is out of range"):
        train_tiny(tiny_run(), tiny_data, tmp_path, fold=7)


def test_missing_folds_file(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    data_dir, _ = tiny_data
    with pytest.raises(DataError, match="folds file not found"):
        train_fold(tiny_run(), data_dir=data_dir, folds_path=tmp_path / "nope.csv", fold=0, runs_dir=tmp_path)


def test_folds_from_other_data(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    _, folds_path = tiny_data
    other_csv = write_synthetic_csv(tmp_path / "raw", n_train=150, n_public=20, n_private=20, seed=99)
    prepare([other_csv], tmp_path / "other")

    with pytest.raises(DataError, match="made for other data"):
        train_fold(tiny_run(), data_dir=tmp_path / "other", folds_path=folds_path, fold=0, runs_dir=tmp_path)


def test_unknown_model_name() -> None:
    run = RunConfig.model_validate({"name": "x", "model": {"arch": "no_such_net"}})
    with pytest.raises(ConfigError, match="unknown model 'no_such_net'"):
        build_model(run)


def test_unknown_config_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nmodel:\n  arch: resnet_seed\ntrain:\n  epoch: 3\n")

    with pytest.raises(ConfigError, match="unknown key 'train.epoch'"):
        load_run_config(config)


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*/*.yaml")), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_shipped_run_configs_build(path: Path) -> None:
    if path.parent.name == "tuned":
        pytest.skip("tuned configs are written by `fer-kaggle tune`, not shipped")
    run = load_run_config(path)

    assert run.name == path.stem
    assert run.model.arch in list_models()
    assert build_model(run).training


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda path: path.name)
def test_shipped_experiments_load(path: Path) -> None:
    _, runs = load_experiment(path)

    assert len({run.name for run in runs}) == len(runs) >= 3


def test_cli_train_precision_override(tiny_data: tuple[Path, Path], tmp_path: Path, run_cli) -> None:
    data_dir, folds_path = tiny_data
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_run(epochs=1, precision="bf16").model_dump(mode="json")))

    completed = run_cli(
        "train", "--config", config, "--fold", "0", "--data", data_dir, "--folds", folds_path,
        "--runs-dir", tmp_path / "runs", "--precision", "fp32", timeout=300,
    )

    assert completed.returncode == 0, completed.stderr
    fold_dir = tmp_path / "runs" / "tiny" / "fold0"
    assert json.loads((fold_dir / "metrics.json").read_text())["precision"] == "fp32"
    assert yaml.safe_load((fold_dir / "config.yaml").read_text())["run"]["train"]["precision"] == "fp32"


def test_cli_train_unknown_model_exit_2(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    data_dir, folds_path = tiny_data
    config = tmp_path / "bad.yaml"
    config.write_text("name: bad\nmodel:\n  arch: no_such_net\n")
    completed = subprocess.run(
        [sys.executable, "-m", "fer_kaggle", "train", "--config", str(config), "--fold", "0",
         "--data", str(data_dir), "--folds", str(folds_path), "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [completed.stderr.strip()]
    assert completed.stderr.startswith(f"fer-kaggle: error: {config}: model.arch: unknown model 'no_such_net'")
    assert not (tmp_path / "runs").exists()


def test_fp32_narrow_model_trains(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    """Train a 4-channel ResNet in fp32: its strided 1x1 shortcut crashes torch's CPU channels_last backward."""
    run = tiny_run(epochs=1, precision="fp32", channels_last=True)

    result = train_tiny(run, tiny_data, tmp_path, device="cpu")

    assert result.paths.metrics.is_file()
    assert yaml.safe_load(result.paths.config.read_text())["run"]["train"]["channels_last"] is True


@pytest.mark.parametrize(
    ("width", "precision", "device", "safe"),
    [(4, "fp32", "cpu", False), (16, "fp32", "cpu", True), (4, "bf16", "cpu", True), (4, "fp32", "cuda", True)],
)
def test_channels_last_is_safe(width: int, precision: str, device: str, safe: bool) -> None:
    run = RunConfig.model_validate(
        {"name": "x", "model": {"arch": "resnet_seed", "kwargs": {"width": width, "depths": [1, 1]}}}
    )
    model = build_model(run)

    assert channels_last_is_safe(model, torch.device(device), precision) is safe
