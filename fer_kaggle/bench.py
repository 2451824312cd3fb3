"""Side-by-side speed and memory benchmark of the model zoo on this machine.

Each model is measured in a fresh process (so peak memory is its own), with fp32 and
bf16 timed back to back in that process, so that their ratio is fair on a shared
machine even when absolute numbers drift.
"""

import multiprocessing
import os
import platform
import resource
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from fer_kaggle.augment import AugmentConfig, build_train_transform, measure_transform_throughput
from fer_kaggle.device import cpu_supports_bf16
from fer_kaggle.models import count_parameters, create_model
from fer_kaggle.predict import model_normalisation, predict_probs

__all__ = ["BenchRow", "benchmark_model", "benchmark_models", "machine_description", "format_markdown"]


@dataclass
class BenchRow:
    """Throughputs (images/s) of one model and the share of a training step spent on augmentation."""

    model: str
    params: int
    train_fp32: float
    train_bf16: float
    infer_bf16: float
    infer_bf16_tta: float
    augment_share: float
    peak_rss_mib: float


def _train_throughput(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor, precision: str, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(batch)
        loss = nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: oneDNN picks its kernels on the first call
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(batch) / (time.perf_counter() - started)


def benchmark_model(name: str, batch_size: int = 128, steps: int = 5, kwargs: dict | None = None) -> BenchRow:
    """Measure one model in the current process; see :func:`benchmark_models`."""
    torch.manual_seed(0)
    model = create_model(name, **(kwargs or {})).to(memory_format=torch.channels_last)
    images = np.random.default_rng(0).integers(0, 256, size=(max(batch_size, 512), 48, 48), dtype=np.uint8)
    mean, std = model_normalisation(model)
    batch = (torch.from_numpy(images[:batch_size]).float().div(255).sub(mean).div(std)).unsqueeze(1)
    batch = batch.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 7, (batch_size,))

    train_fp32 = _train_throughput(model, batch, labels, "fp32", steps)
    train_bf16 = _train_throughput(model, batch, labels, "bf16", steps)

    device = torch.device("cpu")
    predict_probs(model, images[:64], device=device, precision="bf16", tta=False)
    started = time.perf_counter()
    predict_probs(model, images, device=device, precision="bf16", tta=False)
    infer = len(images) / (time.perf_counter() - started)
    started = time.perf_counter()
    predict_probs(model, images, device=device, precision="bf16", tta=True)
    infer_tta = len(images) / (time.perf_counter() - started)

    transform = build_train_transform(AugmentConfig(), mean, std, seed=0)
    augment_rate = measure_transform_throughput(transform, images, repeats=2)
    fastest_train = max(train_fp32, train_bf16)
    augment_share = (1 / augment_rate) / (1 / augment_rate + 1 / fastest_train)

    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchRow(name, count_parameters(model), train_fp32, train_bf16, infer, infer_tta, augment_share, peak_rss_mib)


def _worker(args: tuple[str, int, int]) -> dict:
    return asdict(benchmark_model(*args))


def benchmark_models(names: list[str], batch_size: int = 128, steps: int = 5) -> list[BenchRow]:
    """Measure each model in a fresh spawned process, one after another.

    Notes:
        ``augment_share`` assumes augmentation runs in the training process
        (``num_workers: 0``), so its cost adds to each step's.
    """
    context = multiprocessing.get_context("spawn")
    rows = []
    for name in names:
        with context.Pool(1) as pool:
            rows.append(BenchRow(**pool.apply(_worker, ((name, batch_size, steps),))))
    return rows


def machine_description() -> str:
    """Return a one-line description of the CPU, cores, torch version and bf16 support."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__} with {torch.get_num_threads()} threads; "
        f"native bf16: {'yes' if cpu_supports_bf16() else 'no'}"
    )


def format_markdown(rows: list[BenchRow], batch_size: int) -> str:
    """Format benchmark rows as a Markdown table."""
    lines = [
        f"Batch {batch_size}, 48x48 grayscale, channels_last; images/s (higher is better).",
        "",
        "| model | params | train fp32 | train bf16 | bf16 speed-up | infer bf16 | infer bf16 + flip TTA | augment share of step | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.params:,} | {row.train_fp32:.0f} | {row.train_bf16:.0f} | {row.train_bf16 / row.train_fp32:.2f}x "
            f"| {row.infer_bf16:.0f} | {row.infer_bf16_tta:.0f} | {row.augment_share:.0%} | {row.peak_rss_mib:.0f} |"
        )
    return "\n".join(lines)
