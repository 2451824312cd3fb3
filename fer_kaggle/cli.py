"""Command-line interface: ``fer-kaggle SUBCOMMAND`` (also ``python -m fer_kaggle``).

A thin layer over the stage modules: it parses arguments, calls one function and prints
the result. Bad input ends with one ``fer-kaggle: error: ...`` line on stderr and exit 2.
"""

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from fer_kaggle import __version__
from fer_kaggle.constants import CLASS_NAMES
from fer_kaggle.errors import FerKaggleError

__all__ = ["main", "build_parser"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

#: Blend methods of 'fer-kaggle ensemble' (fer_kaggle.blend.BLEND_METHODS, repeated to keep imports lazy).
BLEND_METHOD_CHOICES = ("mean", "weighted", "hillclimb", "stack")


def _cmd_prepare(args: argparse.Namespace) -> int:
    from fer_kaggle.data.prepare import prepare

    faces, report = prepare(args.sources, args.out)
    print(f"prepared {len(faces)} faces ({faces.layout}) into {args.out}")
    header = f"{'split':<8}" + "".join(f"{name:>9}" for name in CLASS_NAMES) + f"{'unknown':>9}{'total':>8}"
    print(header)
    for split, counts in faces.class_counts().items():
        values = [counts[name] for name in CLASS_NAMES] + [counts["unknown"]]
        print(f"{split:<8}" + "".join(f"{value:>9}" for value in values) + f"{sum(values):>8}")
    if faces.notes:
        print("rows converted or set aside:")
        for reason, count in faces.notes.items():
            print(f"  {reason}: {count}")
    else:
        print("rows converted or set aside: none")
    for line in report.summary_lines():
        print(line)
    print(f"audit: {Path(args.out) / 'audit.md'}")
    return 0


def _cmd_folds(args: argparse.Namespace) -> int:
    from fer_kaggle.data.faceset import load_faceset
    from fer_kaggle.folds import make_folds, write_folds

    faces = load_faceset(args.data)
    frame = make_folds(faces, k=args.k, seed=args.seed)
    write_folds(frame, args.out, data_fingerprint=faces.fingerprint(), k=args.k, seed=args.seed)

    print(f"wrote {args.k} folds of {len(frame)} training faces to {args.out}")
    overall = frame["emotion"].value_counts(normalize=True).sort_index()
    for fold, part in frame.groupby("fold"):
        shares = part["emotion"].value_counts(normalize=True).reindex(overall.index, fill_value=0.0)
        drift = float((shares - overall).abs().max() * 100)
        print(f"  fold {fold}: {len(part)} faces, max class-share drift {drift:.2f} pp")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from fer_kaggle.synth import write_synthetic_csv

    try:
        path = write_synthetic_csv(args.out, n_train=args.n_train, n_public=args.n_public, n_private=args.n_private, seed=args.seed)
    except ValueError as error:
        raise FerKaggleError(f"synth: {error}") from None
    print(f"wrote {args.n_train + args.n_public + args.n_private} synthetic faces to {path}")
    return 0


def _print_train_result(run_name: str, fold: int, result) -> None:  # noqa: ANN001 (TrainResult)
    metrics = result.metrics
    if result.skipped:
        print(
            f"{run_name} fold {fold}: already finished (valid acc {metrics['valid_acc']:.4f}, "
            f"{metrics['epochs_run']} of {metrics['epochs_budget']} epochs); skipped, delete {result.paths.root} to retrain"
        )
        return
    print(
        f"{run_name} fold {fold}: valid acc {metrics['valid_acc']:.4f} at epoch {metrics['best_epoch']} "
        f"of {metrics['epochs_run']}, {metrics['train_seconds'] / 60:.1f} min ({metrics['precision']}, {metrics['device']}) "
        f"-> {result.paths.root}"
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from fer_kaggle.experiment import load_run_config
    from fer_kaggle.train import train_fold

    run = load_run_config(args.config)
    if args.precision is not None:
        run = run.model_copy(update={"train": run.train.model_copy(update={"precision": args.precision})})
    result = train_fold(
        run,
        data_dir=args.data,
        folds_path=args.folds,
        fold=args.fold,
        runs_dir=args.runs_dir,
        epochs=args.epochs,
        limit=args.limit,
        device=args.device,
    )
    _print_train_result(run.name, args.fold, result)
    return 0


def _cmd_train_all(args: argparse.Namespace) -> int:
    from fer_kaggle.experiment import tuned_configs
    from fer_kaggle.train_all import train_experiment

    for tuned_path in tuned_configs(args.experiment).values():
        print(f"using tuned config {tuned_path}")
    results = train_experiment(
        args.experiment,
        epochs=args.epochs,
        limit=args.limit,
        device=args.device,
        on_result=lambda run, fold, result: _print_train_result(run.name, fold, result),
    )
    trained = sum(not result.skipped for result in results)
    print(f"train-all: {trained} folds trained, {len(results) - trained} already finished")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from fer_kaggle.bench import benchmark_models, format_markdown, machine_description
    from fer_kaggle.models import list_models

    names = args.models or list_models()
    unknown = [name for name in names if name not in list_models()]
    if unknown:
        raise FerKaggleError(f"--models: unknown model {unknown[0]!r}; choose from {', '.join(list_models())}")
    print(f"machine: {machine_description()}")
    rows = benchmark_models(names, batch_size=args.batch_size, steps=args.steps)
    print(format_markdown(rows, args.batch_size))
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from fer_kaggle.ensemble import ENSEMBLE_FOLDER, run_ensemble

    summary = run_ensemble(args.experiment, method=args.method, hillclimb_iterations=args.hillclimb_iterations, stack_C=args.stack_c)
    print(f"ensemble of {len(summary['models'])} models over folds {summary['folds']} ({summary['n_oof']} OOF faces)")
    for model in summary["models"]:
        print(f"  {model['name']:<24} OOF acc {model['oof_accuracy']:.4f}  log loss {model['oof_log_loss']:.4f}")
    for blend in summary["blends"]:
        weights = "meta-model" if blend["weights"] is None else ", ".join(f"{name} {weight:.2f}" for name, weight in blend["weights"].items())
        selected = "  <- ensemble.csv" if blend["method"] == summary["selected_method"] else ""
        print(f"  {blend['source']:<24} OOF acc {blend['oof_accuracy']:.4f}  log loss {blend['oof_log_loss']:.4f}  weights: {weights}{selected}")
    print(f"saved to {Path(summary['runs_dir']) / ENSEMBLE_FOLDER}")
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _cmd_submission(args: argparse.Namespace) -> int:
    from fer_kaggle.ensemble import write_submissions

    paths = write_submissions(args.experiment, args.out, label_column=args.label_column)
    print(f"wrote {len(paths)} submissions (with metadata JSON) to {args.out}: {', '.join(path.name for path in paths)}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from fer_kaggle.leaderboard import expected_test_ids, read_solution, score_submission
    from fer_kaggle.submission import DEFAULT_LABEL_COLUMN, read_metadata

    solution = read_solution(args.solution)
    expected_ids = expected_test_ids(solution)
    for path in args.submissions:
        metadata = read_metadata(path) or {}
        label_column = args.label_column or metadata.get("label_column", DEFAULT_LABEL_COLUMN)
        scores = score_submission(path, solution, expected_ids=expected_ids, label_column=label_column)
        print(f"{path}: public {scores['public'].format()}, private {scores['private'].format()}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from fer_kaggle.compare import build_comparison, format_markdown, write_comparison

    comparison = build_comparison(
        args.experiment, submissions_dir=args.submissions, solution_path=args.solution, n_resamples=args.n_resamples, seed=args.seed
    )
    print(format_markdown(comparison), end="")
    markdown_path, figure_path = write_comparison(comparison, args.reports)
    print(f"saved {markdown_path} and {figure_path}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from fer_kaggle.analysis import analyze

    result = analyze(
        args.experiment, model=args.model, fold=args.fold, layer=args.layer, face_id=args.face_id, reports_dir=args.reports
    )
    selection = result.selection
    print(
        f"analysed {selection.run.name} fold {selection.fold} (OOF accuracy {selection.score.oof_accuracy:.4f} over "
        f"folds {', '.join(map(str, selection.score.folds))}; fold valid acc {selection.fold_metrics['valid_acc']:.4f})"
    )
    print(result.confused_pairs, end="")
    for path in result.files.values():
        print(f"saved {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from fer_kaggle.report import build_report

    path = build_report(args.experiment, args.reports)
    print(f"saved {path}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from fer_kaggle.experiment import load_run_config
    from fer_kaggle.tune import (
        TuneSettings,
        build_pruner,
        describe_trial,
        max_epoch_step,
        parse_folds,
        resolve_model_config,
        tune_model,
    )

    config_path = resolve_model_config(args.model, args.config)
    run = load_run_config(config_path)
    settings = TuneSettings(
        data_dir=args.data,
        folds_path=args.folds,
        folds=parse_folds(args.fold),
        epochs=args.epochs,
        limit=args.limit,
        device=args.device,
        runs_dir=args.runs_dir,
        progress=sys.stderr.isatty(),
    )
    pruner = build_pruner(
        args.pruner,
        startup_trials=args.pruner_startup_trials,
        warmup_epochs=args.pruner_warmup_epochs,
        max_epochs=max_epoch_step(run, settings),
    )
    result = tune_model(
        run,
        trials=args.trials,
        timeout=args.timeout,
        settings=settings,
        storage=args.storage,
        study_name=args.study_name,
        pruner=pruner,
        seed=args.seed,
        tuned_dir=args.tuned_dir,
        reports_dir=args.reports_dir,
        on_trial=lambda study, trial: print(describe_trial(trial), flush=True),
    )

    states = [trial.state.name.lower() for trial in result.study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(state)} {state}" for state in sorted(set(states)))
    print(f"study {result.study.study_name}: {result.trials_run} trials run by this worker; {len(states)} in the study ({counts or 'none'})")
    if result.best_config is not None:
        print(f"best {describe_trial(result.study.best_trial)}")
        print(f"wrote {result.best_config}; train-all uses it in place of the run config named {run.name}")
    for figure in result.figures:
        print(f"saved {figure}")
    for note in result.notes:
        print(note)
    return 0


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
    return value


def _add_smoke_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=_positive_int, help="epoch budget, overriding the config's")
    parser.add_argument("--limit", type=_positive_int, help="train on a random subset of this many training faces")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one subparser per stage."""
    parser = argparse.ArgumentParser(prog="fer-kaggle", description="Toolkit for facial-expression Kaggle competitions.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details (INFO level)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = commands.add_parser("prepare", help="read competition files in any layout, audit them, write a cache")
    prepare.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="files or folders (fer2013.csv, train.csv + test.csv, image folders)")
    prepare.add_argument("--out", type=Path, default=Path("data/prepared"), help="output folder (default: %(default)s)")
    prepare.set_defaults(handler=_cmd_prepare)

    folds = commands.add_parser("folds", help="write stratified, duplicate-aware K-fold splits")
    folds.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder (default: %(default)s)")
    folds.add_argument("--k", type=int, default=5, help="number of folds (default: %(default)s)")
    folds.add_argument("--seed", type=int, default=0, help="shuffle seed (default: %(default)s)")
    folds.add_argument("--out", type=Path, default=Path("folds/folds.csv"), help="folds CSV to write (default: %(default)s)")
    folds.set_defaults(handler=_cmd_folds)

    train = commands.add_parser("train", help="train one model config on one fold")
    train.add_argument("--config", type=Path, required=True, help="run config, e.g. configs/models/resnet_seed.yaml")
    train.add_argument("--fold", type=int, required=True, help="held-out fold index, 0..k-1")
    train.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder (default: %(default)s)")
    train.add_argument("--folds", type=Path, default=Path("folds/folds.csv"), help="folds CSV (default: %(default)s)")
    train.add_argument("--runs-dir", type=Path, default=Path("runs"), help="output root; the run goes to RUNS_DIR/NAME/foldF (default: %(default)s)")
    _add_smoke_options(train)
    train.add_argument(
        "--precision", choices=["auto", "bf16", "fp16", "fp32"], help="numeric precision, overriding the config's train.precision"
    )
    train.set_defaults(handler=_cmd_train)

    train_all = commands.add_parser("train-all", help="train every model of an experiment on every fold")
    train_all.add_argument("--experiment", type=Path, default=Path("configs/experiment.yaml"), help="experiment config (default: %(default)s)")
    _add_smoke_options(train_all)
    train_all.set_defaults(handler=_cmd_train_all)

    bench = commands.add_parser("bench", help="measure training and inference speed per model, fp32 vs bf16")
    bench.add_argument("--models", nargs="+", metavar="MODEL", help="registered model names (default: all)")
    bench.add_argument("--batch-size", type=_positive_int, default=128, help="batch size (default: %(default)s)")
    bench.add_argument("--steps", type=_positive_int, default=5, help="timed training steps per precision (default: %(default)s)")
    bench.set_defaults(handler=_cmd_bench)

    synth = commands.add_parser("synth", help="write a synthetic FER-like data set in the fer2013.csv layout")
    synth.add_argument("--out", type=Path, default=Path("data/synth"), help="output folder (default: %(default)s)")
    synth.add_argument("--n-train", type=_positive_int, default=4000, help="training faces (default: %(default)s)")
    synth.add_argument("--n-public", type=_non_negative_int, default=500, help="public test faces (default: %(default)s)")
    synth.add_argument("--n-private", type=_non_negative_int, default=500, help="private test faces (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    synth.set_defaults(handler=_cmd_synth)

    experiment_help = "experiment config (default: %(default)s)"
    ensemble = commands.add_parser("ensemble", help="fit blends (mean, weighted, hillclimb, stack) on the OOF predictions of an experiment")
    ensemble.add_argument("--experiment", type=Path, default=Path("configs/experiment.yaml"), help=experiment_help)
    ensemble.add_argument("--method", choices=BLEND_METHOD_CHOICES, default="weighted", help="blend written as ensemble.csv; every method is fitted (default: %(default)s)")
    ensemble.add_argument("--hillclimb-iterations", type=_positive_int, default=100, help="greedy selection steps of hillclimb (default: %(default)s)")
    ensemble.add_argument("--stack-c", type=_positive_float, default=1.0, help="inverse L2 strength of the stack meta-model (default: %(default)s)")
    ensemble.set_defaults(handler=_cmd_ensemble)

    submission = commands.add_parser("submission", help="write Kaggle CSVs for each model and blend of the last 'ensemble'")
    submission.add_argument("--experiment", type=Path, default=Path("configs/experiment.yaml"), help=experiment_help)
    submission.add_argument("--out", type=Path, default=Path("submissions"), help="output folder (default: %(default)s)")
    submission.add_argument("--label-column", default="label", help="name of the label column (default: %(default)s)")
    submission.set_defaults(handler=_cmd_submission)

    score = commands.add_parser("score", help="score submissions on the public and private splits of a solution file")
    score.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION", help="submission CSV files (id,label)")
    score.add_argument("--solution", type=Path, required=True, help="solution file id,emotion,Usage, e.g. data/prepared/solution.csv")
    score.add_argument("--label-column", help="label column of the submissions (default: from the JSON beside each, else 'label')")
    score.set_defaults(handler=_cmd_score)

    compare = commands.add_parser("compare", help="local leaderboard of every model and blend; writes reports/compare.md and .png")
    compare.add_argument("--experiment", type=Path, default=Path("configs/experiment.yaml"), help=experiment_help)
    compare.add_argument("--submissions", type=Path, default=Path("submissions"), help="folder of the submissions (default: %(default)s)")
    compare.add_argument("--solution", type=Path, help="solution file (default: solution.csv in the experiment's data folder)")
    compare.add_argument("--reports", type=Path, default=Path("reports"), help="output folder (default: %(default)s)")
    compare.add_argument("--n-resamples", type=_positive_int, default=2000, help="bootstrap resamples per interval (default: %(default)s)")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    compare.set_defaults(handler=_cmd_compare)

    analyze = commands.add_parser("analyze", help="figures that explain the best single model; writes reports/analysis/MODEL/")
    analyze.add_argument("--experiment", type=Path, default=Path("configs/experiment.yaml"), help=experiment_help)
    analyze.add_argument("--model", help="run name to analyse (default: the best OOF accuracy over its finished folds)")
    analyze.add_argument("--fold", type=_non_negative_int, help="finished fold whose best.pt is loaded (default: the best valid_acc)")
    analyze.add_argument("--layer", help="module for the filter and activation figures, e.g. layer1.0.conv1 (default: the second Conv2d)")
    analyze.add_argument("--face-id", type=_non_negative_int, help="training-face id for the activation figure (default: the fold's first validation face)")
    analyze.add_argument("--reports", type=Path, default=Path("reports"), help="output root; figures go to REPORTS/analysis/MODEL (default: %(default)s)")
    analyze.set_defaults(handler=_cmd_analyze)

    report = commands.add_parser("report", help="one static HTML page of the audit, folds, runs, comparison and analysis")
    report.add_argument("--experiment", type=Path, default=Path("configs/experiment.yaml"), help=experiment_help)
    report.add_argument("--reports", type=Path, default=Path("reports"), help="folder of the reports; the page is REPORTS/index.html (default: %(default)s)")
    report.set_defaults(handler=_cmd_report)

    tune = commands.add_parser("tune", help="search a model's hyperparameters with Optuna; writes configs/tuned/NAME.yaml")
    tune_model_choice = tune.add_mutually_exclusive_group(required=True)
    tune_model_choice.add_argument("--model", help="run config configs/models/MODEL.yaml, e.g. resnet_seed")
    tune_model_choice.add_argument("--config", type=Path, help="run config file with a search_space section")
    tune.add_argument("--trials", type=_positive_int, default=20, help="finished trials the study should reach, over all workers and restarts (default: %(default)s)")
    tune.add_argument("--timeout", type=float, help="seconds after which this worker starts no new trial")
    tune.add_argument("--fold", default="0", help="validation fold(s) of the objective, e.g. 0 or 0,1,2 for the mean (default: %(default)s)")
    tune.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder (default: %(default)s)")
    tune.add_argument("--folds", type=Path, default=Path("folds/folds.csv"), help="folds CSV (default: %(default)s)")
    tune.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median", help="stops weak trials early (default: %(default)s)")
    tune.add_argument("--pruner-startup-trials", type=_non_negative_int, default=5, help="finished trials before the median pruner prunes (default: %(default)s)")
    tune.add_argument("--pruner-warmup-epochs", type=_non_negative_int, default=2, help="epochs every trial trains before it can be pruned (default: %(default)s)")
    tune.add_argument("--seed", type=int, default=0, help="TPE sampler seed; give each worker of a shared study its own (default: %(default)s)")
    tune.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://USER:PASSWORD@HOST:5432/DB for several workers (default: sqlite:///RUNS_DIR/STUDY.db)")
    tune.add_argument("--study-name", help="study name; workers with the same name and storage share the study (default: the run name)")
    tune.add_argument("--runs-dir", type=Path, default=Path("runs/tune"), help="trial runs go to RUNS_DIR/STUDY/trialN/foldF (default: %(default)s)")
    tune.add_argument("--tuned-dir", type=Path, default=Path("configs/tuned"), help="folder of the best config NAME.yaml (default: %(default)s)")
    tune.add_argument("--reports-dir", type=Path, default=Path("reports/tune"), help="figures go to REPORTS_DIR/STUDY/ (default: %(default)s)")
    _add_smoke_options(tune)
    tune.set_defaults(handler=_cmd_tune)

    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 (warnings' signature)
    return f"fer-kaggle: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.formatwarning = _format_warning
    # One line per epoch and a line on resume, even without --verbose.
    logging.getLogger("fer_kaggle.train").setLevel(logging.INFO)

    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except FerKaggleError as error:
        print(f"fer-kaggle: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("fer-kaggle: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
