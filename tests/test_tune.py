"""Optuna tuning on tiny synthetic data: real studies in SQLite and PostgreSQL, real workers, real interrupts.

The PostgreSQL tests need a server: ``.ci/postgres start`` starts one on 127.0.0.1 and
prints its URL, which ``.ci/run`` exports as ``FER_KAGGLE_TEST_POSTGRES``.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from fer_kaggle.cli import main
from fer_kaggle.data.prepare import prepare
from fer_kaggle.errors import ConfigError
from fer_kaggle.experiment import RunConfig, load_experiment, load_run_config, tuned_configs
from fer_kaggle.folds import make_folds, write_folds
from fer_kaggle.search_space import TUNABLE_PARAMETERS, apply_params
from fer_kaggle.synth import write_synthetic_csv
from fer_kaggle.tune import TuneSettings, default_storage, open_storage, open_study, tune_model

POSTGRES_ENV = "FER_KAGGLE_TEST_POSTGRES"
REPO_ROOT = Path(__file__).resolve().parents[1]

#: lr spans 1e-6 (no learning within a few epochs) to 1e-1, so weak trials are clear-cut.
WIDE_LR_SPACE = {
    "lr": {"type": "float", "low": 1.0e-6, "high": 1.0e-1, "log": True},
    "drop_rate": {"type": "float", "low": 0.0, "high": 0.5},
}


def tiny_run(search_space: dict | None = None, **train: object) -> RunConfig:
    settings = {"epochs": 3, "batch_size": 32, "lr": 0.003, "patience": 50, "ema": False, "tta": False}
    settings.update(train)
    return RunConfig.model_validate(
        {
            "name": "tiny",
            "model": {"arch": "resnet_seed", "kwargs": {"width": 4, "depths": [1, 1]}},
            "train": settings,
            "search_space": search_space if search_space is not None else WIDE_LR_SPACE,
        }
    )


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Prepared synthetic data (150 training faces, 40 test faces) and its 3 folds."""
    root = tmp_path_factory.mktemp("tiny")
    csv_path = write_synthetic_csv(root / "raw", n_train=150, n_public=20, n_private=20, seed=3)
    faces, _ = prepare([csv_path], root / "prepared")
    folds_path = root / "folds.csv"
    with pytest.warns(UserWarning):  # Disgust has fewer faces than folds in so small a set
        write_folds(make_folds(faces, k=3, seed=0), folds_path, data_fingerprint=faces.fingerprint(), k=3, seed=0)
    return root / "prepared", folds_path


def tiny_settings(tiny_data: tuple[Path, Path], root: Path, **options: object) -> TuneSettings:
    data_dir, folds_path = tiny_data
    return TuneSettings(data_dir=data_dir, folds_path=folds_path, runs_dir=root / "runs", **options)


def tune_tiny(run: RunConfig, tiny_data: tuple[Path, Path], root: Path, trials: int, **options: object):
    options.setdefault("pruner", optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    return tune_model(
        run,
        trials=trials,
        settings=tiny_settings(tiny_data, root),
        tuned_dir=root / "tuned",
        reports_dir=root / "reports",
        **options,
    )


def states_of(study: optuna.Study) -> list[TrialState]:
    return [trial.state for trial in study.get_trials(deepcopy=False)]


@pytest.fixture(scope="module")
def sqlite_study(tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    """A finished 6-trial study of ``tiny_run()`` in the default SQLite storage, and its folder.

    Its first trial has a learning rate that learns within an epoch, so that the median
    pruner has a clear bar against which the trials with tiny learning rates fall short.
    """
    root = tmp_path_factory.mktemp("study")
    settings = tiny_settings(tiny_data, root)
    open_study(default_storage("tiny", settings.runs_dir), "tiny").enqueue_trial({"lr": 0.02, "drop_rate": 0.0})
    return tune_tiny(tiny_run(), tiny_data, root, trials=6), root


# Search spaces in run configs.


def write_config(path: Path, search_space: object) -> Path:
    config = {"name": "tiny", "model": {"arch": "resnet_seed"}, "search_space": search_space}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("search_space", "message"),
    [
        ({"learning_rate": {"type": "float", "low": 0.1, "high": 1.0}}, "unknown tunable parameter 'learning_rate'"),
        ({}, "the search space is empty"),
        ({"lr": {"type": "float", "low": 0.1, "high": 0.01}}, "low=0.1 is greater than high=0.01"),
        ({"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "log=true needs low > 0"),
        ({"width": {"type": "int", "low": 8, "high": 32, "step": 0}}, "search_space.width.int.step"),
        ({"lr": {"type": "uniform", "low": 0.1, "high": 1.0}}, "does not match any of the expected tags"),
        ({"batch_size": {"type": "categorical", "choices": []}}, "search_space.batch_size.categorical.choices"),
        ({"lr": {"type": "float", "low": 0.001, "high": 0.1, "spread": 2}}, "unknown key 'search_space.lr.float.spread'"),
    ],
)
def test_search_space_invalid(search_space: object, message: str, tmp_path: Path) -> None:
    path = write_config(tmp_path / "bad.yaml", search_space)
    with pytest.raises(ConfigError, match=message) as raised:
        load_run_config(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("name", ["resnet_seed", "preact_resnet", "dnn"])
def test_shipped_configs_have_search_space(name: str) -> None:
    run = load_run_config(REPO_ROOT / "configs" / "models" / f"{name}.yaml")
    assert run.search_space


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lr", 0.02),
        ("weight_decay", 0.001),
        ("drop_rate", 0.35),
        ("width", 16),
        ("label_smoothing", 0.05),
        ("mixup_alpha", 0.4),
        ("augment_strength", 1.5),
        ("batch_size", 64),
        ("epochs", 7),
    ],
)
def test_apply_params_sets_field(name: str, value: object) -> None:
    tuned = apply_params(tiny_run(), {name: value})
    section = tuned.model_dump()
    for key in TUNABLE_PARAMETERS[name]:
        section = section[key]
    assert section == value


def test_apply_params_rejects_out_of_range() -> None:
    with pytest.raises(ConfigError, match="train.label_smoothing"):
        apply_params(tiny_run(), {"label_smoothing": 1.0})


def test_tune_bounds_checked_first(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run({"label_smoothing": {"type": "float", "low": 0.0, "high": 1.0}})
    with pytest.raises(ConfigError, match="train.label_smoothing"):
        tune_tiny(run, tiny_data, tmp_path, trials=1)
    assert not (tmp_path / "runs" / "tiny").exists()


def test_tune_without_search_space(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run().model_copy(update={"search_space": None})
    with pytest.raises(ConfigError, match="has no search_space"):
        tune_tiny(run, tiny_data, tmp_path, trials=1)


# A real study in SQLite.


def test_study_prunes_weak_trials(sqlite_study) -> None:
    result, _ = sqlite_study
    states = states_of(result.study)
    assert len(states) == 6
    assert TrialState.PRUNED in states
    assert TrialState.COMPLETE in states


def test_study_in_default_sqlite(sqlite_study) -> None:
    result, root = sqlite_study
    assert (root / "runs" / "tiny.db").is_file()
    reloaded = optuna.load_study(study_name="tiny", storage=f"sqlite:///{root / 'runs' / 'tiny.db'}")
    assert len(reloaded.trials) == 6


def test_trials_train_in_own_folders(sqlite_study) -> None:
    result, root = sqlite_study
    for trial in result.study.get_trials(deepcopy=False):
        assert (root / "runs" / "tiny" / f"trial{trial.number}" / "fold0" / "history.csv").is_file()


def test_best_config_written(sqlite_study) -> None:
    result, root = sqlite_study
    tuned = load_run_config(root / "tuned" / "tiny.yaml")
    assert result.best_config == root / "tuned" / "tiny.yaml"
    assert tuned.name == "tiny"
    assert tuned.train.lr == pytest.approx(result.study.best_params["lr"])
    assert tuned.model.kwargs["drop_rate"] == pytest.approx(result.study.best_params["drop_rate"])
    assert tuned.model.kwargs["width"] == 4


def test_study_figures_saved(sqlite_study) -> None:
    result, root = sqlite_study
    assert (root / "reports" / "tiny" / "optimization_history.png").is_file()
    assert (root / "reports" / "tiny" / "param_importances.png").is_file()
    assert result.notes == []


ONE_PARAMETER_SPACE = {"lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True}}


@pytest.fixture(scope="module")
def resumed_study(tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    """One study of a one-parameter space, run three times: with a budget of 2, then 3, then 3 trials."""
    root = tmp_path_factory.mktemp("resumed")
    run = tiny_run(ONE_PARAMETER_SPACE, epochs=1)
    return [tune_tiny(run, tiny_data, root, trials=trials, pruner="none") for trials in (2, 3, 3)]


def test_study_resumes_to_budget(resumed_study) -> None:
    first, second, third = resumed_study
    assert first.trials_run == 2
    assert second.trials_run == 1
    assert third.trials_run == 0
    assert [trial.number for trial in third.study.trials] == [0, 1, 2]


def test_importances_skipped_one_parameter(resumed_study) -> None:
    third = resumed_study[-1]
    assert len(third.figures) == 1
    assert "no parameter importances" in third.notes[0]


def test_same_seed_same_trials(resumed_study, tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    first = resumed_study[0]
    again = tune_tiny(tiny_run(ONE_PARAMETER_SPACE, epochs=1), tiny_data, tmp_path, trials=2, pruner="none")

    assert [trial.params for trial in again.study.trials] == [trial.params for trial in first.study.trials[:2]]
    assert [trial.value for trial in again.study.trials] == [trial.value for trial in first.study.trials[:2]]


def test_mean_over_folds(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    run = tiny_run(epochs=1)
    result = tune_model(
        run,
        trials=1,
        settings=tiny_settings(tiny_data, tmp_path, folds=(0, 2)),
        pruner="median",
        tuned_dir=None,
        reports_dir=tmp_path / "reports",
    )
    trial = result.study.trials[0]
    accuracies = trial.user_attrs["fold_valid_acc"]
    assert len(accuracies) == 2
    assert trial.value == pytest.approx(sum(accuracies) / 2)
    assert (tmp_path / "runs" / "tiny" / "trial0" / "fold2" / "metrics.json").is_file()


# train-all picks up the tuned config.


def write_experiment(root: Path, tiny_data: tuple[Path, Path], tuned_dir: Path) -> Path:
    data_dir, folds_path = tiny_data
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "tiny.yaml").write_text(yaml.safe_dump(tiny_run().model_dump(mode="json")))
    experiment = root / "experiment.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "data": str(data_dir),
                "folds": str(folds_path),
                "runs_dir": str(root / "runs"),
                "models": ["models/tiny.yaml"],
                "train_folds": [0],
                "epochs": 1,
                "tuned_dir": str(tuned_dir),
            }
        )
    )
    return experiment


def test_load_experiment_uses_tuned(sqlite_study, tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    result, root = sqlite_study
    experiment = write_experiment(tmp_path, tiny_data, root / "tuned")

    _, runs = load_experiment(experiment)

    assert runs[0].train.lr == pytest.approx(result.study.best_params["lr"])
    assert tuned_configs(experiment) == {"tiny": root / "tuned" / "tiny.yaml"}


def test_load_experiment_without_tuned(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, tiny_data, tmp_path / "no_tuned")

    _, runs = load_experiment(experiment)

    assert runs[0].train.lr == tiny_run().train.lr
    assert tuned_configs(experiment) == {}


def test_tuned_config_other_name(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "tiny.yaml").write_text(yaml.safe_dump(tiny_run().model_copy(update={"name": "other"}).model_dump(mode="json")))
    experiment = write_experiment(tmp_path, tiny_data, tmp_path / "tuned")

    with pytest.raises(ConfigError, match="replaces run 'tiny'"):
        load_experiment(experiment)


def test_cli_train_all_says_tuned(sqlite_study, tiny_data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, root = sqlite_study
    experiment = write_experiment(tmp_path, tiny_data, root / "tuned")

    status = main(["train-all", "--experiment", str(experiment)])

    assert status == 0
    assert f"using tuned config {root / 'tuned' / 'tiny.yaml'}" in capsys.readouterr().out


# Command-line errors: one line, exit 2.


def run_main_tune(config: Path, tiny_data: tuple[Path, Path], root: Path, *options: str) -> int:
    data_dir, folds_path = tiny_data
    return main(
        ["tune", "--config", str(config), "--trials", "1", "--epochs", "1", "--data", str(data_dir), "--folds", str(folds_path),
         "--runs-dir", str(root / "runs"), "--tuned-dir", str(root / "tuned"), "--reports-dir", str(root / "reports"), *options]
    )


@pytest.mark.parametrize(
    ("search_space", "options", "message"),
    [
        ({"lrate": {"type": "float", "low": 0.001, "high": 0.01}}, [], "unknown tunable parameter 'lrate'"),
        ({}, [], "the search space is empty"),
        (None, [], "has no search_space"),
        (WIDE_LR_SPACE, ["--storage", "nosuchdb://somewhere"], "--storage nosuchdb://somewhere: cannot open the study storage"),
        (WIDE_LR_SPACE, ["--storage", "postgresql://user:secret@127.0.0.1:1/db"], "--storage postgresql://user:***@127.0.0.1:1/db"),
        (WIDE_LR_SPACE, ["--fold", "0,x"], "--fold: invalid value '0,x'"),
        (WIDE_LR_SPACE, ["--fold", "5"], "fold 5 is out of range"),
    ],
)
def test_cli_tune_error(
    search_space: dict | None, options: list[str], message: str, tiny_data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = tiny_run().model_dump(mode="json")
    config["search_space"] = search_space
    if search_space is None:
        del config["search_space"]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))

    status = run_main_tune(path, tiny_data, tmp_path, *options)

    stderr = capsys.readouterr().err
    assert status == 2
    assert stderr.count("\n") == 1
    assert stderr.startswith("fer-kaggle: error: ")
    assert message in stderr
    assert "secret" not in stderr
    assert not (tmp_path / "tuned").exists()


def test_cli_tune_unknown_model(capsys: pytest.CaptureFixture) -> None:
    status = main(["tune", "--model", "no_such_model"])
    assert status == 2
    assert "--model no_such_model: configs/models/no_such_model.yaml not found" in capsys.readouterr().err


# Several workers on one PostgreSQL study.


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set; start a server with `.ci/postgres start` and export its URL as {POSTGRES_ENV}")
    return url


def worker_command(config: Path, tiny_data: tuple[Path, Path], root: Path, url: str, study: str, trials: int, seed: int) -> list[str]:
    data_dir, folds_path = tiny_data
    return [
        sys.executable, "-m", "fer_kaggle", "tune", "--config", str(config), "--storage", url, "--study-name", study,
        "--trials", str(trials), "--seed", str(seed), "--pruner", "none", "--data", str(data_dir), "--folds", str(folds_path),
        "--runs-dir", str(root / "runs"), "--tuned-dir", str(root / "tuned"), "--reports-dir", str(root / "reports"),
    ]  # fmt: skip


def start_worker(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    with log.open("w") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)


def finish_worker(worker: subprocess.Popen, log: Path) -> int:
    try:
        return worker.wait(timeout=240)
    except subprocess.TimeoutExpired:
        worker.kill()
        pytest.fail(f"worker timed out; its output:\n{log.read_text()}")


@pytest.fixture
def worker_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_run(epochs=1).model_dump(mode="json")))
    return path


@pytest.mark.parametrize("n_trials", [4])
def test_postgres_two_workers(n_trials: int, postgres_url: str, worker_config: Path, tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    study_name = f"test-{uuid.uuid4().hex}"
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    workers = [
        start_worker(worker_command(worker_config, tiny_data, tmp_path, postgres_url, study_name, n_trials, seed), log)
        for seed, log in enumerate(logs)
    ]
    statuses = [finish_worker(worker, log) for worker, log in zip(workers, logs)]

    study = optuna.load_study(study_name=study_name, storage=open_storage(postgres_url))
    numbers = [trial.number for trial in study.trials]
    finished = [trial for trial in study.trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert statuses == [0, 0], [log.read_text() for log in logs]
    assert len(set(numbers)) == len(numbers)
    assert sorted(numbers) == list(range(len(numbers)))
    # Each worker checks the shared budget after its trial, so two workers overshoot by at most one.
    assert n_trials <= len(finished) <= n_trials + 1
    assert len(finished) == len(numbers)
    assert len({trial.user_attrs["worker"] for trial in study.trials}) == 2


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL])
def test_postgres_interrupted_worker(
    stop_signal: signal.Signals, postgres_url: str, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_run(epochs=3).model_dump(mode="json")))
    study_name = f"test-{uuid.uuid4().hex}"
    storage = open_storage(postgres_url)
    log = tmp_path / "interrupted.log"
    worker = start_worker(worker_command(config, tiny_data, tmp_path, postgres_url, study_name, 50, 0), log)

    # Wait until one trial is complete and the next one has reported an epoch.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
        except KeyError:  # the worker has not created the study yet
            continue
        if any(trial.state == TrialState.COMPLETE for trial in trials) and any(
            trial.state == TrialState.RUNNING and trial.intermediate_values for trial in trials
        ):
            break
    else:
        worker.kill()
        pytest.fail(f"the worker never reached its second trial; its output:\n{log.read_text()}")
    worker.send_signal(stop_signal)
    status = finish_worker(worker, log)

    before = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    finished_before = sum(trial.state == TrialState.COMPLETE for trial in before)
    resumed_log = tmp_path / "resumed.log"
    resumed = start_worker(worker_command(config, tiny_data, tmp_path, postgres_url, study_name, finished_before + 1, 1), resumed_log)
    resumed_status = finish_worker(resumed, resumed_log)
    after = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)

    interrupted_state = TrialState.FAIL if stop_signal == signal.SIGINT else TrialState.RUNNING
    assert status == (130 if stop_signal == signal.SIGINT else -signal.SIGKILL)
    assert [trial.state for trial in before].count(interrupted_state) == 1
    assert resumed_status == 0, resumed_log.read_text()
    assert sum(trial.state == TrialState.COMPLETE for trial in after) == finished_before + 1
    assert len({trial.number for trial in after}) == len(after)
