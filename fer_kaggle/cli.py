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

    path = write_synthetic_csv(args.out, n_train=args.n_train, n_public=args.n_public, n_private=args.n_private, seed=args.seed)
    print(f"wrote {args.n_train + args.n_public + args.n_private} synthetic faces to {path}")
    return 0


def _print_train_result(run_name: str, fold: int, result) -> None:  # noqa: ANN001 (TrainResult)
    metrics = result.metrics
    if result.skipped:
        print(f"{run_name} fold {fold}: already finished (valid acc {metrics['valid_acc']:.4f}); skipped")
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
    from fer_kaggle.train_all import train_experiment

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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
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
    synth.add_argument("--n-public", type=_positive_int, default=500, help="public test faces (default: %(default)s)")
    synth.add_argument("--n-private", type=_positive_int, default=500, help="private test faces (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    synth.set_defaults(handler=_cmd_synth)

    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 (warnings' signature)
    return f"fer-kaggle: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.formatwarning = _format_warning

    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except FerKaggleError as error:
        print(f"fer-kaggle: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("fer-kaggle: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
