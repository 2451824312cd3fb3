"""Hyperparameter search with Optuna: TPE sampling, per-epoch pruning, resumable shared studies.

A study lives in an Optuna RDB storage: SQLite under ``runs/tune/`` by default, so an
interrupted study resumes when the same command runs again, or PostgreSQL, so several
workers on one machine or many run the same study. Each trial trains the run config with
the trial's parameters (see :mod:`fer_kaggle.search_space`) on one or more folds and
returns the mean validation accuracy. It reports the validation accuracy after every
epoch, so the pruner can stop weak trials early. The best trial is written as a complete
run config to ``configs/tuned/<run name>.yaml``, which ``train-all`` then uses.
"""

import logging
import math
import os
import re
import shutil
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import sqlalchemy.exc
import torch
import yaml
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from fer_kaggle.atomic import atomic_write_text
from fer_kaggle.errors import ConfigError
from fer_kaggle.experiment import RunConfig
from fer_kaggle.fold_data import load_fold_data
from fer_kaggle.plots import save_figure
from fer_kaggle.search_space import CategoricalSpec, IntSpec, apply_params, corner_params, suggest_params
from fer_kaggle.train import build_model, train_fold

__all__ = [
    "PRUNERS",
    "TuneSettings",
    "TuneResult",
    "build_pruner",
    "default_storage",
    "describe_trial",
    "max_epoch_step",
    "open_storage",
    "open_study",
    "parse_folds",
    "resolve_model_config",
    "save_study_figures",
    "tune_model",
    "write_best_config",
]

logger = logging.getLogger(__name__)

PRUNERS = ("median", "hyperband", "none")

#: Trial states that count towards a study's trial budget. A failed trial (an error or an
#: interrupt) does not count, so a resumed study runs it again with new parameters.
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)

# A worker refreshes its running trial's heartbeat every HEARTBEAT_SECONDS. A RUNNING trial
# without a heartbeat for STALE_SECONDS (its worker was killed) is marked FAIL by the next
# worker that starts a trial, and RetryHeartbeatStaleTrialCallback queues its parameters once more.
HEARTBEAT_SECONDS = 30
STALE_SECONDS = 120


@dataclass
class TuneSettings:
    """Study-wide settings shared by every trial; they are not tuned and not written to the tuned config."""

    data_dir: Path = Path("data/prepared")
    folds_path: Path = Path("folds/folds.csv")
    folds: tuple[int, ...] = (0,)
    epochs: int | None = None
    limit: int | None = None
    device: str = "auto"
    runs_dir: Path = Path("runs/tune")
    progress: bool = False


@dataclass
class TuneResult:
    """Outcome of one worker's :func:`tune_model` call on a (possibly shared) study."""

    study: optuna.Study
    trials_run: int
    best_config: Path | None
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_storage(study_name: str, runs_dir: Path = Path("runs/tune")) -> str:
    """Return the SQLite URL ``sqlite:///<runs_dir>/<study_name>.db``, creating ``runs_dir``."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{runs_dir / f'{study_name}.db'}"


def open_storage(url: str) -> RDBStorage:
    """Connect to an Optuna RDB storage, creating its tables on first use.

    Heartbeats are on, so a trial whose worker was killed is marked FAIL after
    ``STALE_SECONDS`` and retried once with the same parameters.

    Raises:
        ConfigError: the URL cannot be parsed, names an unknown database or a driver that
            is not installed, or the database cannot be reached.
    """
    redacted_url = _hide_password(url)
    url = _with_default_driver(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=STALE_SECONDS,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except ImportError as error:
        raise ConfigError(
            f"--storage {redacted_url}: database driver not installed ({error}); install it, for PostgreSQL with "
            "pip install 'fer_kaggle[postgres]'"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"--storage {redacted_url}: cannot open the study storage: {reason}; expected a reachable database URL such as "
            "sqlite:///runs/tune/NAME.db or postgresql://USER:PASSWORD@HOST:5432/DB"
        ) from None


def build_pruner(name: str, *, startup_trials: int = 5, warmup_epochs: int = 2, max_epochs: int = 30) -> optuna.pruners.BasePruner:
    """Build the pruner named ``median``, ``hyperband`` or ``none``.

    Args:
        name: one of :data:`PRUNERS`.
        startup_trials: finished trials before the median pruner prunes anything.
        warmup_epochs: epochs a trial always trains before the median pruner may stop
            it; Hyperband's smallest budget is one epoch more.
        max_epochs: the largest epoch step a trial reports (Hyperband's largest budget).

    Raises:
        ConfigError: an unknown pruner name.
    """
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min(warmup_epochs + 1, max_epochs), max_resource=max_epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner: unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def open_study(storage: str | RDBStorage, study_name: str, *, seed: int = 0, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the maximising study ``study_name`` in ``storage``, or load it when it exists.

    Workers that call this with the same name and storage share one study. Give each
    worker its own ``seed``: TPE draws its first, random trials from the seed alone, so
    workers with equal seeds start by repeating each other's parameters.
    """
    if isinstance(storage, str):
        storage = open_storage(storage)
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner if pruner is not None else build_pruner("median"),
        load_if_exists=True,
    )


def tune_model(
    run: RunConfig,
    *,
    trials: int | None = 20,
    timeout: float | None = None,
    settings: TuneSettings | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    pruner: str | optuna.pruners.BasePruner = "median",
    seed: int = 0,
    tuned_dir: Path | None = Path("configs/tuned"),
    reports_dir: Path = Path("reports/tune"),
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> TuneResult:
    """Search ``run.search_space`` until the study has ``trials`` finished trials or ``timeout`` passes.

    Every trial trains into ``<settings.runs_dir>/<study name>/trial<N>/fold<F>/``. When the
    worker stops (also on Ctrl-C), the study's best trial so far is written to
    ``<tuned_dir>/<run.name>.yaml`` and its figures to ``<reports_dir>/<study name>/``.

    Args:
        run: the run config to tune; its ``search_space`` must be set.
        trials: the study's budget of finished (complete or pruned) trials, summed over
            all workers and earlier calls; None runs until ``timeout``.
        timeout: seconds after which this worker starts no new trial.
        settings: data, folds and the study-wide epoch budget and subset size.
        storage: an Optuna storage URL; by default ``sqlite:///runs/tune/<study>.db``.
        study_name: by default ``run.name``.
        pruner: a name from :data:`PRUNERS` (with this module's defaults) or a pruner.
        seed: seed of the TPE sampler.
        tuned_dir: where the best config goes; None writes none.
        reports_dir: where the figures go.
        on_trial: called after each trial of this worker with the study and the trial.

    Raises:
        ConfigError: no or invalid search space, bounds that the run config rejects, a
            search space and ``settings.epochs`` that both set the epochs, a bad fold, or
            an unusable storage.
        DataError: missing or mismatched data or folds files.
    """
    settings = settings or TuneSettings()
    study_name = study_name or run.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", study_name):
        raise ConfigError(f"--study-name: invalid name {study_name!r}; use letters, digits, '_', '.' and '-' only")
    _check_tunable(run, settings)
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials: expected at least 1 trial, got {trials}")

    if isinstance(pruner, str):
        pruner = build_pruner(pruner, max_epochs=max_epoch_step(run, settings))
    storage = storage or default_storage(study_name, settings.runs_dir)
    study = open_study(storage, study_name, seed=seed, pruner=pruner)

    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = []
    n_trials = None
    if trials is not None:
        n_trials = max(0, trials - _count_finished(study))
        # NOTE: workers check the shared budget after each trial, so N workers can finish
        # up to N - 1 trials more than ``trials``.
        callbacks.append(optuna.study.MaxTrialsCallback(trials, states=FINISHED_STATES))
    if on_trial is not None:
        callbacks.append(on_trial)
    if n_trials == 0:
        logger.info("study %s already has %d finished trials (budget %d); no new trial", study_name, _count_finished(study), trials)

    objective = _Objective(run, settings, study_name, _epoch_stride(run, settings))
    try:
        if n_trials != 0:
            study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks, catch=(torch.OutOfMemoryError,))
    except KeyboardInterrupt:
        logger.warning("study %s interrupted; writing the best trial so far", study_name)
        _write_outputs(study, run, tuned_dir, reports_dir / study_name)
        raise
    best_config, figures, notes = _write_outputs(study, run, tuned_dir, reports_dir / study_name)
    return TuneResult(study, trials_run=len(objective.started), best_config=best_config, figures=figures, notes=notes)


class _Objective:
    """Train one trial's run config on each tuning fold and return the mean validation accuracy."""

    def __init__(self, run: RunConfig, settings: TuneSettings, study_name: str, epoch_stride: int) -> None:
        self.run = run
        self.settings = settings
        self.runs_dir = settings.runs_dir / study_name
        self.epoch_stride = epoch_stride
        self.started: list[int] = []

    def __call__(self, trial: optuna.Trial) -> float:
        self.started.append(trial.number)
        params = suggest_params(trial, self.run.search_space or {})
        trial_run = apply_params(self.run, params).model_copy(update={"name": f"trial{trial.number}"})
        folder = self.runs_dir / trial_run.name
        if folder.exists():
            # Trial numbers are never reused in a study, so this folder belongs to an
            # earlier study of the same name that was deleted from the storage.
            logger.warning("removing %s, left by an earlier study named %s", folder, self.runs_dir.name)
            shutil.rmtree(folder)

        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("run_dir", str(folder))
        trial.set_user_attr("folds", list(self.settings.folds))
        trial.set_user_attr("epochs", self.settings.epochs)
        trial.set_user_attr("limit", self.settings.limit)

        accuracies = []
        for position, fold in enumerate(self.settings.folds):
            result = train_fold(
                trial_run,
                data_dir=self.settings.data_dir,
                folds_path=self.settings.folds_path,
                fold=fold,
                runs_dir=self.runs_dir,
                epochs=self.settings.epochs,
                limit=self.settings.limit,
                device=self.settings.device,
                progress=self.settings.progress,
                on_epoch_end=self._reporter(trial, position, fold),
            )
            accuracies.append(float(result.metrics["valid_acc"]))
        trial.set_user_attr("fold_valid_acc", accuracies)
        return float(np.mean(accuracies))

    def _reporter(self, trial: optuna.Trial, position: int, fold: int) -> Callable[[dict], None]:
        """Report each epoch at step ``position * epoch_stride + epoch``, so steps of later folds never collide."""

        def report(row: dict) -> None:
            trial.report(float(row["valid_acc"]), position * self.epoch_stride + int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"fold {fold} epoch {row['epoch']}: valid acc {row['valid_acc']:.4f}")

        return report


def write_best_config(study: optuna.Study, run: RunConfig, path: Path) -> Path | None:
    """Write ``run`` with the study's best parameters to ``path`` atomically; None when no trial completed.

    Raises:
        ConfigError: the best parameters no longer fit the run config.
    """
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    tuned = apply_params(run, best.params)

    folds = best.user_attrs.get("folds", [])
    budget = ", ".join(
        f"{name} {value}" for name, value in (("epochs", best.user_attrs.get("epochs")), ("limit", best.user_attrs.get("limit"))) if value
    )
    header = (
        f"# Written by `fer-kaggle tune`: study {study.study_name}, trial {best.number}, mean validation "
        f"accuracy {best.value:.4f} on fold(s) {', '.join(map(str, folds))}{f' ({budget})' if budget else ''}.\n"
        f"# `fer-kaggle train-all` uses this file in place of the run config named {run.name}; delete it to stop.\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(tuned.model_dump(mode="json"), sort_keys=False))
    return path


def save_study_figures(study: optuna.Study, out_dir: Path) -> tuple[list[Path], list[str]]:
    """Save the optimisation history and the parameter importances as PNG files.

    Returns:
        The written figures, and the reasons for each figure left out.
    """
    import optuna.visualization.matplotlib as optuna_plots

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return [], ["no figures: the study has no completed trial"]

    figures, notes = [], []
    # Optuna's matplotlib plots switch the global style to ggplot; rc_context restores it.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)
        history = out_dir / "optimization_history.png"
        save_figure(optuna_plots.plot_optimization_history(study).figure, history)
        figures.append(history)

        names = {name for trial in completed for name in trial.params}
        if len(completed) < 2 or len(names) < 2:
            notes.append(
                f"no parameter importances: they need 2 completed trials and 2 parameters, "
                f"the study has {len(completed)} and {len(names)}"
            )
        else:
            importances = out_dir / "param_importances.png"
            save_figure(optuna_plots.plot_param_importances(study).figure, importances)
            figures.append(importances)
    for note in notes:
        logger.info("%s", note)
    return figures, notes


def _write_outputs(study: optuna.Study, run: RunConfig, tuned_dir: Path | None, figures_dir: Path) -> tuple[Path | None, list[Path], list[str]]:
    best_config = write_best_config(study, run, tuned_dir / f"{run.name}.yaml") if tuned_dir is not None else None
    figures, notes = save_study_figures(study, figures_dir)
    return best_config, figures, notes


def _check_tunable(run: RunConfig, settings: TuneSettings) -> None:
    """Reject a run that cannot be tuned before the study or any trial starts."""
    if run.search_space is None:
        raise ConfigError(
            f"run {run.name!r} has no search_space; add one to its config (configs/models/resnet_seed.yaml has an example)"
        )
    if settings.epochs is not None and "epochs" in run.search_space:
        raise ConfigError(
            f"--epochs {settings.epochs} conflicts with search_space.epochs of run {run.name!r}; drop one of them"
        )
    if not settings.folds:
        raise ConfigError("--fold: expected at least one fold index, e.g. 0 or 0,1,2")
    if len(set(settings.folds)) != len(settings.folds):
        raise ConfigError(f"--fold: fold indices {list(settings.folds)} repeat a fold; list each fold once")

    for params in corner_params(run.search_space):
        build_model(apply_params(run, params))
    for fold in settings.folds:
        load_fold_data(settings.data_dir, settings.folds_path, fold, limit=settings.limit, seed=run.train.seed)


def max_epoch_step(run: RunConfig, settings: TuneSettings) -> int:
    """Return the last step a trial can report: one step per epoch of each tuning fold."""
    return _epoch_stride(run, settings) * len(settings.folds)


def _epoch_stride(run: RunConfig, settings: TuneSettings) -> int:
    """Return the most epochs any trial can train on one fold."""
    if settings.epochs is not None:
        return settings.epochs
    spec = (run.search_space or {}).get("epochs")
    if isinstance(spec, IntSpec):
        return spec.high
    if isinstance(spec, CategoricalSpec):
        return int(max(spec.choices))
    return run.train.epochs


def _count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def _with_default_driver(url: str) -> str:
    """Pin psycopg2, the driver of the ``postgres`` extra, on a ``postgresql://`` URL without a driver.

    SQLAlchemy 2.1 picks psycopg 3 for a bare ``postgresql://`` URL, and 2.0 picks psycopg2.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _hide_password(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url if "@" not in url else "<unparsable URL>"


def _format_params(params: dict) -> str:
    return ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}" for name, value in params.items())


def describe_trial(trial: FrozenTrial) -> str:
    """Format a finished trial as one line: state, accuracy and parameters."""
    params = _format_params(trial.params)
    if trial.state == TrialState.COMPLETE:
        return f"trial {trial.number}: valid acc {trial.value:.4f} ({params})"
    if trial.state == TrialState.PRUNED:
        last = trial.last_step
        value = trial.intermediate_values.get(last, math.nan) if last is not None else math.nan
        return f"trial {trial.number}: pruned at step {last} with valid acc {value:.4f} ({params})"
    return f"trial {trial.number}: {trial.state.name.lower()} ({params})"


def parse_folds(text: str) -> tuple[int, ...]:
    """Parse ``--fold`` values such as ``0`` or ``0,1,2``.

    Raises:
        ConfigError: a value that is not a comma-separated list of non-negative integers.
    """
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ConfigError(f"--fold: invalid value {text!r}; expected fold indices such as 0 or 0,1,2")
    return tuple(int(part) for part in parts)


def resolve_model_config(model: str | None, config: Path | None, models_dir: Path = Path("configs/models")) -> Path:
    """Return the run config of ``--model NAME`` (``<models_dir>/NAME.yaml``) or ``--config PATH``.

    Raises:
        ConfigError: neither or both given, or no such model config.
    """
    if (model is None) == (config is None):
        raise ConfigError("tune: give exactly one of --model NAME or --config PATH")
    if config is not None:
        return config
    path = models_dir / f"{model}.yaml"
    if not path.is_file():
        known = sorted(candidate.stem for candidate in models_dir.glob("*.yaml"))
        raise ConfigError(f"--model {model}: {path} not found; choose from {', '.join(known) or '(none)'} or pass --config PATH")
    return path

