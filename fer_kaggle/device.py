"""Choose the device and the mixed-precision mode for training and inference."""

import logging
import warnings
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

__all__ = ["select_device", "select_precision", "autocast_context", "cpu_supports_bf16", "channels_last_is_safe"]

logger = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """Return whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def select_device(requested: str = "auto") -> torch.device:
    """Return the torch device for ``requested``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: an unknown device string, or CUDA requested where it is not available.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {requested!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} requested but CUDA is not available; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {requested!r}")
    return device


def select_precision(requested: str, device: torch.device) -> str:
    """Resolve ``auto`` to ``bf16``, ``fp16`` or ``fp32`` for ``device``.

    ``auto`` picks bf16 on a CPU with native bf16 support, bf16 or fp16 (with a gradient
    scaler) on CUDA, and fp32 elsewhere. An explicit request is honoured, with a warning
    where the hardware will emulate it slowly.
    """
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_supports_bf16() else "fp32"
    if requested == "fp16" and device.type == "cpu":
        raise ValueError("precision fp16 is for CUDA; use bf16 or fp32 on the CPU")
    if requested == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
        warnings.warn("this CPU has no native bf16: bf16 autocast will be slower than fp32", UserWarning, stacklevel=2)
    return requested


def autocast_context(precision: str, device: torch.device) -> AbstractContextManager:
    """Return the autocast context for ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


#: Input channels below which an fp32 strided 1x1 convolution is not trained channels_last on the CPU.
MIN_SAFE_CHANNELS = 16


def channels_last_is_safe(model: nn.Module, device: torch.device, precision: str) -> bool:
    """Return whether ``model`` can be trained in channels_last memory format on ``device``.

    Notes:
        torch 2.14.1 on the CPU crashes with a segmentation fault in the fp32 backward pass
        of a channels_last 1x1 convolution with stride 2 and few input channels. It was seen
        with 2, 4, 8 and 12 input channels on 48x48 maps, and not with 10, 15, 16 or more.
        The strided shortcuts of very narrow ResNets hit it. For such models in fp32 on the
        CPU this check returns False, so they train in the default memory format. bf16
        autocast and CUDA were not affected in these trials.
    """
    if device.type != "cpu" or precision != "fp32":
        return True
    return not any(
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride != (1, 1)
        and module.in_channels < MIN_SAFE_CHANNELS
        for module in model.modules()
    )
