"""Train one model on one fold, resumably, and write its OOF and test predictions.

Each epoch ends with an atomic ``last.pt`` checkpoint, so an interrupted run continues
from its last finished epoch. Shuffling, augmentation, mixup and dropout are reseeded
from (seed, fold, epoch) at each epoch start, so a resumed run on the CPU gets the same
batches as an uninterrupted one.
"""

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fer_kaggle.atomic import atomic_write_text
from fer_kaggle.augment import build_mixup, build_train_transform, reseed_transform
from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.device import autocast_context, channels_last_is_safe, select_device, select_precision
from fer_kaggle.errors import ConfigError
from fer_kaggle.experiment import RunConfig
from fer_kaggle.fold_data import FoldData, load_fold_data
from fer_kaggle.models import count_parameters, create_model
from fer_kaggle.plots import plot_learning_curves
from fer_kaggle.predict import model_normalisation, predict_probs
from fer_kaggle.runs import RunPaths, run_lock, save_checkpoint, save_predictions, write_json

__all__ = ["FaceDataset", "TrainResult", "build_model", "train_fold"]

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds"]


class FaceDataset(Dataset):
    """uint8 faces with integer labels, passed through an albumentations transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:  # noqa: ANN001 (albumentations Compose)
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(image=self.images[index])["image"], int(self.labels[index])


@dataclass
class TrainResult:
    """Result of :func:`train_fold`: the run's metrics and whether it was already finished."""

    metrics: dict
    skipped: bool
    paths: RunPaths


def build_model(run: RunConfig) -> nn.Module:
    """Create the run's model from the registry with its configured keyword arguments."""
    return create_model(run.model.arch, **run.model.kwargs)


def train_fold(
    run: RunConfig,
    *,
    data_dir: Path,
    folds_path: Path,
    fold: int,
    runs_dir: Path = Path("runs"),
    epochs: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train ``run`` on all folds but ``fold``, validate on ``fold``, and predict OOF and test.

    A finished run (its ``metrics.json`` exists) is skipped. An unfinished one resumes
    from ``last.pt`` when its config snapshot matches, and is rejected otherwise.

    ``on_epoch_end`` receives each epoch's history row (epoch, train/valid loss and
    accuracy, lr, seconds) after the epoch's checkpoint is written. An exception it
    raises (such as ``optuna.TrialPruned``) stops the run and propagates, and the run
    can resume later.

    Raises:
        ConfigError: bad fold, model or option; a config that differs from the one the
            interrupted run in the same folder used; another process writing that folder.
        DataError: missing or mismatched data or folds files.
    """
    paths = RunPaths(runs_dir, run.name, fold)
    if paths.finished():
        return TrainResult(_read_metrics(paths), skipped=True, paths=paths)

    if epochs is not None:
        run = run.model_copy(update={"train": run.train.model_copy(update={"epochs": epochs})})
    torch_device = _device(device)
    precision = _precision(run.train.precision, torch_device)
    data = load_fold_data(Path(data_dir), Path(folds_path), fold, limit=limit, seed=run.train.seed)
    _seed_everything(_fold_seed(run, fold))
    model = build_model(run)

    snapshot = {
        "run": run.model_dump(mode="json"),
        "fold": fold,
        "data": str(data_dir),
        "folds": str(folds_path),
        "limit": limit,
    }
    with run_lock(paths):
        if paths.finished():
            return TrainResult(_read_metrics(paths), skipped=True, paths=paths)
        _check_snapshot(paths, snapshot)
        if run.train.channels_last and not channels_last_is_safe(model, torch_device, precision):
            # TODO: drop this once torch's CPU fp32 channels_last 1x1 stride-2 convolution backward stops crashing.
            logger.warning("%s: fp32 on the CPU with a narrow strided 1x1 convolution, so channels_last is off", run.name)
            run = run.model_copy(update={"train": run.train.model_copy(update={"channels_last": False})})
        return _fit(run, model, data, paths, fold, torch_device, precision, progress, on_epoch_end)


def _fit(
    run: RunConfig,
    model: nn.Module,
    data: FoldData,
    paths: RunPaths,
    fold: int,
    device: torch.device,
    precision: str,
    progress: bool,
    on_epoch_end: Callable[[dict], None] | None,
) -> TrainResult:
    cfg = run.train
    seed = _fold_seed(run, fold)

    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    mean, std = model_normalisation(model)
    ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True) if cfg.ema else None

    transform = build_train_transform(run.augment, mean, std, seed=seed)
    generator = torch.Generator()
    loader = DataLoader(
        FaceDataset(data.train_images, data.train_labels, transform),
        batch_size=min(cfg.batch_size, len(data.train_images)),
        shuffle=True,
        drop_last=len(data.train_images) > cfg.batch_size,
        num_workers=cfg.num_workers,
        generator=generator,
        persistent_workers=False,
    )
    steps_per_epoch = len(loader)

    optimizer = create_optimizer_v2(model, opt=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    scheduler = _build_scheduler(cfg, optimizer, steps_per_epoch)
    mixup = build_mixup(run.mixup.model_copy(update={"label_smoothing": cfg.label_smoothing}), num_classes=NUM_CLASSES)
    train_loss_fn = SoftTargetCrossEntropy() if mixup is not None else LabelSmoothingCrossEntropy(cfg.label_smoothing)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    start_epoch, history, best = 0, [], {"acc": -1.0, "epoch": -1, "loss": float("nan")}
    if paths.last.is_file():
        state = torch.load(paths.last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start_epoch, history, best = state["epoch"] + 1, state["history"], state["best"]
        logger.info("%s: resuming at epoch %d of %d", paths.root, start_epoch + 1, cfg.epochs)

    n_params = count_parameters(model)
    epochs_without_gain = sum(1 for row in history if row["epoch"] > best["epoch"])
    for epoch in range(start_epoch, cfg.epochs):
        if epochs_without_gain >= cfg.patience:
            break
        started = time.perf_counter()
        _seed_everything(seed * 1000 + epoch)
        generator.manual_seed(seed * 1000 + epoch)
        reseed_transform(transform, seed * 1000 + epoch)

        train_loss, train_acc = _train_epoch(
            model, ema, loader, optimizer, scheduler, scaler, mixup, train_loss_fn, cfg, device, precision,
            epoch, steps_per_epoch, desc=f"{run.name} fold {fold} epoch {epoch + 1}/{cfg.epochs}", progress=progress,
        )
        evaluated = ema.module if ema is not None else model
        valid_probs = predict_probs(evaluated, data.valid_images, device=device, precision=precision, tta=cfg.tta, channels_last=cfg.channels_last)
        valid_loss, valid_acc = _score(valid_probs, data.valid_labels)

        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "valid_loss": valid_loss,
                "valid_acc": valid_acc,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - started,
            }
        )
        if valid_acc > best["acc"]:
            best = {"acc": valid_acc, "epoch": epoch + 1, "loss": valid_loss}
            save_checkpoint(paths.best, {"model": evaluated.state_dict(), "epoch": epoch + 1, "valid_acc": valid_acc})
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1

        save_checkpoint(
            paths.last,
            {
                "model": model.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "history": history,
                "best": best,
            },
        )
        _write_history(paths, history)
        logger.info(
            "%s fold %d epoch %d: train acc %.4f, valid acc %.4f (best %.4f at epoch %d)",
            run.name, fold, epoch + 1, train_acc, valid_acc, best["acc"], best["epoch"],
        )
        if on_epoch_end is not None:
            on_epoch_end(history[-1])

    return _finish(run, model, data, paths, fold, device, precision, history, best, n_params)


def _finish(
    run: RunConfig,
    model: nn.Module,
    data: FoldData,
    paths: RunPaths,
    fold: int,
    device: torch.device,
    precision: str,
    history: list[dict],
    best: dict,
    n_params: int,
) -> TrainResult:
    """Predict OOF and test faces with the best checkpoint, then write metrics last."""
    state = torch.load(paths.best, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    tta = run.train.tta

    oof = predict_probs(model, data.valid_images, device=device, precision=precision, tta=tta, channels_last=run.train.channels_last)
    save_predictions(paths.oof, data.valid_ids, oof)
    test = predict_probs(model, data.test_images, device=device, precision=precision, tta=tta, channels_last=run.train.channels_last)
    save_predictions(paths.test, data.test_ids, test)

    valid_loss, valid_acc = _score(oof, data.valid_labels)
    metrics = {
        "name": run.name,
        "arch": run.model.arch,
        "fold": fold,
        "params": n_params,
        "valid_acc": valid_acc,
        "valid_loss": valid_loss,
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "epochs_budget": run.train.epochs,
        "n_train": len(data.train_images),
        "n_valid": len(data.valid_images),
        "n_test": len(data.test_images),
        "tta": tta,
        "precision": precision,
        "device": str(device),
        "train_seconds": float(sum(row["seconds"] for row in history)),
    }
    write_json(paths.metrics, metrics)
    paths.last.unlink(missing_ok=True)
    return TrainResult(metrics, skipped=False, paths=paths)


def _train_epoch(
    model: nn.Module,
    ema: ModelEmaV3 | None,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler,  # noqa: ANN001 (a timm or torch scheduler)
    scaler: torch.amp.GradScaler,
    mixup,  # noqa: ANN001 (timm Mixup or None)
    loss_fn: nn.Module,
    cfg,  # noqa: ANN001 (TrainConfig)
    device: torch.device,
    precision: str,
    epoch: int,
    steps_per_epoch: int,
    desc: str,
    progress: bool,
) -> tuple[float, float]:
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for step, (images, labels) in enumerate(bar):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        hard_labels = labels
        if mixup is not None and len(images) % 2 == 0:
            images, labels = mixup(images, labels)
        elif mixup is not None:
            labels = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()

        with autocast_context(precision, device):
            logits = model(images)
        loss = loss_fn(logits.float(), labels)

        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        _step_scheduler(scheduler, epoch * steps_per_epoch + step + 1)
        if ema is not None:
            ema.update(model, step=epoch * steps_per_epoch + step)

        total_loss += float(loss.detach()) * len(images)
        correct += int((logits.argmax(dim=1) == hard_labels).sum())
        seen += len(images)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _build_scheduler(cfg, optimizer: torch.optim.Optimizer, steps_per_epoch: int):  # noqa: ANN001, ANN202
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total_steps + 1)
    if cfg.schedule == "cosine":
        scheduler, _ = create_scheduler_v2(
            optimizer,
            sched="cosine",
            num_epochs=cfg.epochs,
            warmup_epochs=int(round(cfg.warmup_epochs)),
            warmup_lr=cfg.lr * 0.01,
            min_lr=cfg.lr * 0.001,
            step_on_epochs=False,
            updates_per_epoch=steps_per_epoch,
        )
        return scheduler
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _step_scheduler(scheduler, num_updates: int) -> None:  # noqa: ANN001
    if hasattr(scheduler, "step_update"):
        scheduler.step_update(num_updates=num_updates)
    else:
        scheduler.step()


def _score(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Return (log loss, accuracy) of probabilities against integer labels."""
    if len(labels) == 0:
        return float("nan"), float("nan")
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return float(-np.log(picked).mean()), float((probs.argmax(axis=1) == labels).mean())


def _fold_seed(run: RunConfig, fold: int) -> int:
    return run.train.seed * 1000 + fold


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device(requested: str) -> torch.device:
    try:
        return select_device(requested)
    except ValueError as error:
        raise ConfigError(f"--device: {error}") from None


def _precision(requested: str, device: torch.device) -> str:
    try:
        return select_precision(requested, device)
    except ValueError as error:
        raise ConfigError(f"train.precision: {error}") from None


def _check_snapshot(paths: RunPaths, snapshot: dict) -> None:
    """Write the config snapshot, or check it against the interrupted run's."""
    text = yaml.safe_dump(snapshot, sort_keys=True)
    if paths.last.is_file() and paths.config.is_file():
        previous = yaml.safe_load(paths.config.read_text(encoding="utf-8"))
        if previous != yaml.safe_load(text):
            raise ConfigError(
                f"{paths.root}: contains an interrupted run with another config ({paths.config}); "
                "delete the folder to start over, or restore the old config to resume"
            )
        return
    atomic_write_text(paths.config, text)


def _write_history(paths: RunPaths, history: list[dict]) -> None:
    frame = pd.DataFrame(history, columns=HISTORY_COLUMNS)
    atomic_write_text(paths.history, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    plot_learning_curves({"train": frame}, paths.curves, title=paths.root.as_posix())


def _read_metrics(paths: RunPaths) -> dict:
    return json.loads(paths.metrics.read_text(encoding="utf-8"))
