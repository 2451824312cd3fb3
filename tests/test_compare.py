"""Ensemble -> submission -> score -> compare on tiny trained runs, and the compare figure numbers."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fer_kaggle.cli import main
from fer_kaggle.compare import CompareRow, Comparison, _get_compare_info, build_comparison, format_markdown
from fer_kaggle.data.prepare import prepare
from fer_kaggle.ensemble import collect_experiment
from fer_kaggle.errors import DataError
from fer_kaggle.experiment import RunConfig
from fer_kaggle.folds import make_folds, write_folds
from fer_kaggle.leaderboard import GainInterval
from fer_kaggle.runs import RunPaths, load_predictions, save_predictions
from fer_kaggle.synth import write_synthetic_csv
from fer_kaggle.train import train_fold

K = 3
MODELS = {"tiny_cnn": ("resnet_seed", {"width": 4, "depths": [1, 1]}), "tiny_dnn": ("dnn", {"width": 16})}


def tiny_run(name: str, arch: str, kwargs: dict) -> RunConfig:
    return RunConfig.model_validate(
        {"name": name, "model": {"arch": arch, "kwargs": kwargs}, "train": {"epochs": 1, "batch_size": 32, "lr": 0.003}}
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment of two tiny models, each trained 1 epoch on all 3 folds."""
    root = tmp_path_factory.mktemp("compare")
    csv_path = write_synthetic_csv(root / "raw", n_train=150, n_public=20, n_private=20, seed=3)
    faces, _ = prepare([csv_path], root / "prepared")
    write_folds(make_folds(faces, k=K, seed=0), root / "folds.csv", data_fingerprint=faces.fingerprint(), k=K, seed=0)

    (root / "models").mkdir()
    for name, (arch, kwargs) in MODELS.items():
        run = tiny_run(name, arch, kwargs)
        (root / "models" / f"{name}.yaml").write_text(yaml.safe_dump(run.model_dump(mode="json")))
        for fold in range(K):
            train_fold(run, data_dir=root / "prepared", folds_path=root / "folds.csv", fold=fold, runs_dir=root / "runs", progress=False)

    experiment = {"name": "tiny", "data": str(root / "prepared"), "folds": str(root / "folds.csv"), "runs_dir": str(root / "runs"),
                  "models": [f"models/{name}.yaml" for name in MODELS]}
    (root / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    return root


@pytest.fixture
def workdir(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory whose experiment file points at the shared trained runs."""
    runs = tmp_path / "runs"
    shutil.copytree(trained / "runs", runs)
    experiment = yaml.safe_load((trained / "experiment.yaml").read_text())
    experiment["runs_dir"] = str(runs)
    experiment["models"] = [str(trained / model) for model in experiment["models"]]
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_pipeline_end_to_end(workdir: Path, trained: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["ensemble", "--experiment", "experiment.yaml", "--method", "hillclimb"]) == 0
    assert main(["submission", "--experiment", "experiment.yaml"]) == 0
    capsys.readouterr()

    submissions = workdir / "submissions"
    expected = {"tiny_cnn", "tiny_dnn", "ensemble", "ensemble-mean", "ensemble-weighted", "ensemble-hillclimb", "ensemble-stack"}
    assert {path.stem for path in submissions.glob("*.csv")} == expected
    frame = pd.read_csv(submissions / "ensemble.csv")
    assert list(frame.columns) == ["id", "label"]
    assert len(frame) == 40
    assert frame["label"].between(0, 6).all()
    metadata = json.loads((submissions / "ensemble.json").read_text())
    assert metadata["blend_method"] == "hillclimb"
    assert set(metadata["weights"]) == set(MODELS)
    assert metadata["folds"] == {name: [0, 1, 2] for name in MODELS}
    assert 0.0 <= metadata["oof_accuracy"] <= 1.0
    assert "git_commit" in metadata
    assert pd.read_csv(submissions / "ensemble-hillclimb.csv").equals(frame)

    solution = trained / "prepared" / "solution.csv"
    assert main(["score", str(submissions / "tiny_cnn.csv"), str(submissions / "ensemble.csv"), "--solution", str(solution)]) == 0
    scored = capsys.readouterr().out.splitlines()
    assert len(scored) == 2
    assert re.fullmatch(r".*tiny_cnn\.csv: public [01]\.\d{4} \(20 faces\), private [01]\.\d{4} \(20 faces\)", scored[0])

    assert main(["compare", "--experiment", "experiment.yaml"]) == 0
    table = capsys.readouterr().out
    for name in expected - {"ensemble"}:
        assert f"| {name} |" in table
    assert (workdir / "reports" / "compare.md").read_text() in table
    assert (workdir / "reports" / "compare.png").stat().st_size > 0


def test_compare_scores_match_score(workdir: Path, trained: Path) -> None:
    assert main(["ensemble", "--experiment", "experiment.yaml"]) == 0
    assert main(["submission", "--experiment", "experiment.yaml"]) == 0

    comparison = build_comparison(Path("experiment.yaml"), n_resamples=200)

    solution = pd.read_csv(trained / "prepared" / "solution.csv")
    submission = pd.read_csv(workdir / "submissions" / "tiny_dnn.csv").set_index("id")["label"]
    public = solution[solution["Usage"] == "Public"]
    expected = float((submission.reindex(public["id"]).to_numpy() == public["emotion"].to_numpy()).mean())
    row = next(row for row in comparison.rows if row.name == "tiny_dnn")
    assert row.scores["public"] == pytest.approx(expected)


def test_blend_weights_match_saved_probs(workdir: Path) -> None:
    assert main(["ensemble", "--experiment", "experiment.yaml", "--method", "weighted"]) == 0
    summary = json.loads((workdir / "runs" / "ensemble" / "summary.json").read_text())
    weighted = next(blend for blend in summary["blends"] if blend["method"] == "weighted")

    blended = sum(weight * load_predictions(workdir / "runs" / "ensemble" / f"{name}.test.npy")[1] for name, weight in weighted["weights"].items())

    saved = load_predictions(workdir / "runs" / "ensemble" / "ensemble-weighted.test.npy")[1]
    assert sum(weighted["weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(blended, saved, atol=1e-4)


def test_test_probs_are_fold_means(workdir: Path) -> None:
    predictions = collect_experiment(Path("experiment.yaml"))
    model = predictions.models[0]

    folds = [load_predictions(RunPaths(workdir / "runs", model.name, fold).test) for fold in range(K)]

    by_id = [probs[np.argsort(ids)] for ids, probs in folds]
    assert np.allclose(model.test_probs, np.mean(by_id, axis=0), atol=1e-6)
    assert np.array_equal(model.test_ids, np.sort(folds[0][0]))


def test_missing_fold_names_run(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "runs" / "tiny_dnn" / "fold2" / "metrics.json").unlink()

    status = main(["ensemble", "--experiment", "experiment.yaml"])

    error = capsys.readouterr().err
    assert status == 2
    assert "tiny_dnn/fold2" in error
    assert "make train-all" in error
    assert len(error.strip().splitlines()) == 1


def test_mismatched_oof_ids_rejected(workdir: Path) -> None:
    paths = RunPaths(workdir / "runs", "tiny_dnn", 1)
    ids, probs = load_predictions(paths.oof)
    save_predictions(paths.oof, ids[1:], probs[1:].astype(np.float32))

    with pytest.raises(DataError, match="OOF ids differ"):
        collect_experiment(Path("experiment.yaml"))


def test_compare_without_ensemble(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["compare", "--experiment", "experiment.yaml"])

    assert status == 2
    assert "make ensemble" in capsys.readouterr().err


def test_compare_rejects_other_experiment(workdir: Path) -> None:
    assert main(["ensemble", "--experiment", "experiment.yaml"]) == 0
    assert main(["submission", "--experiment", "experiment.yaml"]) == 0
    metadata_path = workdir / "submissions" / "tiny_cnn.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["experiment"] = "other"
    metadata_path.write_text(json.dumps(metadata))

    with pytest.raises(DataError, match="experiment 'other'"):
        build_comparison(Path("experiment.yaml"), n_resamples=100)


def test_compare_without_solution(workdir: Path, trained: Path) -> None:
    assert main(["ensemble", "--experiment", "experiment.yaml"]) == 0
    assert main(["submission", "--experiment", "experiment.yaml"]) == 0
    data = workdir / "prepared"
    shutil.copytree(trained / "prepared", data)
    (data / "solution.csv").unlink()
    experiment = yaml.safe_load(Path("experiment.yaml").read_text())
    experiment["data"] = str(data)
    Path("experiment.yaml").write_text(yaml.safe_dump(experiment))

    with pytest.warns(UserWarning, match="solution.csv not found"):
        comparison = build_comparison(Path("experiment.yaml"), n_resamples=100)

    assert all(row.scores["public"] is None for row in comparison.rows)
    assert "| n/a | n/a |" in format_markdown(comparison)


def crafted_comparison() -> Comparison:
    rows = [
        CompareRow("cnn", "model", "p", 0.60, {"public": 0.62, "private": 0.61}),
        CompareRow("dnn", "model", "p", 0.45, {"public": 0.44, "private": None}),
        CompareRow(
            "ensemble-mean", "blend", "w", 0.63, {"public": 0.65, "private": 0.64},
            {"public": GainInterval(0.03, 0.01, 0.05, 0.95, 100), "private": None},
        ),
    ]
    return Comparison("crafted", rows, "cnn", None, 100, 0)


def test_compare_info_numbers() -> None:
    info = _get_compare_info(crafted_comparison())

    assert info["names"] == ["cnn", "dnn", "ensemble-mean"]
    assert info["blend_names"] == ["ensemble-mean"]
    assert np.allclose(info["accuracy"]["OOF"], [0.60, 0.45, 0.63])
    assert np.isnan(info["accuracy"]["private"][1])
    assert np.allclose(info["gains"]["public"]["gain"], [3.0])
    assert np.allclose(info["gains"]["public"]["low"], [1.0])
    assert np.isnan(info["gains"]["private"]["gain"][0])


def test_markdown_marks_missing_split() -> None:
    text = format_markdown(crafted_comparison())

    dnn_line = next(line for line in text.splitlines() if line.startswith("| dnn |"))
    assert "| 0.4400 | n/a |" in dnn_line
    assert "+3.00 pp [+1.00, +5.00]" in text
