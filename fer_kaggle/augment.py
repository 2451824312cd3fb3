"""Training augmentation for 48x48 grayscale faces: albumentations pipelines and timm mixup/cutmix.

Both pipelines take a ``(48, 48)`` uint8 image and return a float32 tensor ``(1, 48, 48)``
normalised as ``(pixel / 255 - mean) / std``.

Reproducibility (albumentations 2.0.8, torch DataLoader):

* ``build_train_transform(..., seed=s)`` gives the same augmentation sequence for the same
  seed in one process. ``A.Compose(seed=s)`` seeds every child transform with ``s``, so two
  children that draw the same number of values per call make identical decisions (the
  ``p=0.5`` flip and the ``p=0.5`` padded crop would always fire together).
  :func:`reseed_transform` therefore gives all of them one shared stream.
* A DataLoader worker receives a copy of the transform with the random state it had in the
  main process. Without :func:`seed_worker_transform` as ``worker_init_fn``, every worker
  and every epoch repeat the same augmentations, whether or not a seed was given. With it,
  each worker uses torch's per-worker seed, which differs per worker and per epoch and is
  reproducible when the DataLoader gets ``generator=torch.Generator().manual_seed(s)``.
* ``seed=None`` draws fresh OS entropy, so runs are not reproducible.
* timm 1.0's :class:`~timm.data.Mixup` draws from numpy's global generator, so
  mixup/cutmix is reproducible only after ``np.random.seed`` in the process that calls it.
"""

import logging
import random
import statistics
import time
from typing import Annotated, Literal

import albumentations as A
import cv2
import numpy as np
import pydantic
import torch
from albumentations.pytorch import ToTensorV2
from pydantic import Field
from timm.data import Mixup

from fer_kaggle.config import StrictModel
from fer_kaggle.constants import IMAGE_SIZE

__all__ = [
    "AffineConfig",
    "AugmentConfig",
    "BrightnessContrastConfig",
    "CropConfig",
    "ErasingConfig",
    "HFlipConfig",
    "MixupConfig",
    "apply_strength",
    "build_eval_transform",
    "build_mixup",
    "build_train_transform",
    "measure_transform_throughput",
    "reseed_transform",
    "seed_worker_transform",
]

logger = logging.getLogger(__name__)

# Upper bounds of the config fields. apply_strength clips scaled values to them, so a
# strength above 1 saturates instead of producing an invalid transform.
MAX_SHIFT = 0.5
MAX_SCALE = 0.5
MAX_ROTATE_DEGREES = 180.0
MAX_PADDING = IMAGE_SIZE // 2
MAX_BRIGHTNESS_CONTRAST = 1.0
MAX_STRENGTH = 2.0

Probability = Annotated[float, Field(ge=0.0, le=1.0, description="probability of applying the transform to an image")]
AreaFraction = Annotated[float, Field(gt=0.0, le=1.0)]
AspectRatio = Annotated[float, Field(gt=0.0)]


class HFlipConfig(StrictModel):
    """Horizontal flip. Facial expressions are left-right symmetric, so labels stay valid."""

    p: Probability = 0.5


class AffineConfig(StrictModel):
    """Random shift, zoom and rotation (``albumentations.Affine``) with zero-filled borders."""

    shift: float = Field(0.1, ge=0.0, le=MAX_SHIFT, description="max shift per axis, as a fraction of the side")
    scale: float = Field(0.1, ge=0.0, le=MAX_SCALE, description="zoom factor is drawn from [1 - scale, 1 + scale]")
    rotate: float = Field(10.0, ge=0.0, le=MAX_ROTATE_DEGREES, description="max rotation in degrees, either way")
    p: Probability = 0.5


class CropConfig(StrictModel):
    """Zero padding followed by a random 48x48 crop, as torchvision's ``RandomCrop(padding=...)``."""

    padding: int = Field(4, ge=0, le=MAX_PADDING, description="zero padding on each side, in pixels")
    p: Probability = 0.5


class BrightnessContrastConfig(StrictModel):
    """Random brightness and contrast (``albumentations.RandomBrightnessContrast``)."""

    brightness: float = Field(
        0.2, ge=0.0, le=MAX_BRIGHTNESS_CONTRAST, description="max brightness shift, as a fraction of 255"
    )
    contrast: float = Field(
        0.2,
        ge=0.0,
        le=MAX_BRIGHTNESS_CONTRAST,
        description="contrast factor is drawn from [1 - contrast, 1 + contrast]",
    )
    p: Probability = 0.5


class ErasingConfig(StrictModel):
    """Random erasing of one rectangle, filled with 0 after normalisation (the dataset mean)."""

    p: Probability = 0.25
    scale: tuple[AreaFraction, AreaFraction] = Field(
        (0.02, 0.15), description="range of the erased area, as a fraction of the image area"
    )
    ratio: tuple[AspectRatio, AspectRatio] = Field(
        (0.3, 3.3), description="range of the erased rectangle's aspect ratio (height / width)"
    )

    @pydantic.model_validator(mode="after")
    def _check_ranges(self) -> "ErasingConfig":
        for name in ("scale", "ratio"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"erasing.{name}=[{low}, {high}] is invalid: expected [min, max] with min <= max")
        return self


class AugmentConfig(StrictModel):
    """Training augmentation for FER2013-sized faces.

    ``strength`` scales every probability and every magnitude linearly (see
    :func:`apply_strength`), so one number can be tuned: 0 turns augmentation off and 1
    uses the values below as written.
    """

    strength: float = Field(1.0, ge=0.0, le=MAX_STRENGTH, description="multiplier for all probabilities and limits")
    hflip: HFlipConfig = Field(default_factory=HFlipConfig)
    affine: AffineConfig = Field(default_factory=AffineConfig)
    crop: CropConfig = Field(default_factory=CropConfig)
    brightness_contrast: BrightnessContrastConfig = Field(default_factory=BrightnessContrastConfig)
    erasing: ErasingConfig = Field(default_factory=ErasingConfig)


class MixupConfig(StrictModel):
    """Mixup/cutmix on whole batches via :class:`timm.data.Mixup`. Both alphas at 0 turn it off."""

    mixup_alpha: float = Field(0.0, ge=0.0, description="mixup weight ~ Beta(alpha, alpha), and 0 disables mixup")
    cutmix_alpha: float = Field(0.0, ge=0.0, description="cutmix area ~ Beta(alpha, alpha), and 0 disables cutmix")
    prob: Probability = 1.0
    switch_prob: float = Field(
        0.5, ge=0.0, le=1.0, description="probability of cutmix instead of mixup when both alphas are above 0"
    )
    mode: Literal["batch", "pair", "elem"] = "batch"
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0, description="label smoothing applied to the mixed targets")


def apply_strength(cfg: AugmentConfig) -> AugmentConfig:
    """Return a copy of ``cfg`` with ``strength`` folded into the values and set to 1.

    Probabilities and magnitudes are multiplied by ``strength`` and clipped to their field
    bounds, so above 1 they saturate. Padding is rounded to whole pixels. Because an
    augmentation's probability and its magnitude both scale, its average effect grows
    faster than linearly in ``strength``.
    """
    strength = cfg.strength

    def prob(p: float) -> float:
        return min(1.0, p * strength)

    def limit(value: float, bound: float) -> float:
        return min(bound, value * strength)

    low_area, high_area = cfg.erasing.scale

    return AugmentConfig(
        strength=1.0,
        hflip=HFlipConfig(p=prob(cfg.hflip.p)),
        affine=AffineConfig(
            shift=limit(cfg.affine.shift, MAX_SHIFT),
            scale=limit(cfg.affine.scale, MAX_SCALE),
            rotate=limit(cfg.affine.rotate, MAX_ROTATE_DEGREES),
            p=prob(cfg.affine.p),
        ),
        crop=CropConfig(padding=min(MAX_PADDING, round(cfg.crop.padding * strength)), p=prob(cfg.crop.p)),
        brightness_contrast=BrightnessContrastConfig(
            brightness=limit(cfg.brightness_contrast.brightness, MAX_BRIGHTNESS_CONTRAST),
            contrast=limit(cfg.brightness_contrast.contrast, MAX_BRIGHTNESS_CONTRAST),
            p=prob(cfg.brightness_contrast.p),
        ),
        # At strength 0 the area would be 0, which the field rejects, but p is 0 then and
        # build_train_transform leaves erasing out, so the area is irrelevant.
        erasing=ErasingConfig(
            p=prob(cfg.erasing.p),
            scale=(limit(low_area, 1.0), limit(high_area, 1.0)) if strength > 0 else cfg.erasing.scale,
            ratio=cfg.erasing.ratio,
        ),
    )


def _check_normalisation(mean: float, std: float) -> None:
    if not (np.isfinite(mean) and 0.0 <= mean <= 1.0):
        raise ValueError(
            f"mean={mean!r} is invalid: expected the pixel mean as a fraction of 255 in [0, 1], "
            "so divide a mean in pixel units by 255"
        )
    if not (np.isfinite(std) and 0.0 < std <= 1.0):
        raise ValueError(
            f"std={std!r} is invalid: expected the pixel standard deviation as a fraction of 255 in (0, 1], "
            "so divide a std in pixel units by 255"
        )


def _normalise_to_tensor(mean: float, std: float) -> list[A.BasicTransform]:
    return [A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()]


def build_train_transform(cfg: AugmentConfig, mean: float, std: float, seed: int | None = None) -> A.Compose:
    """Build the training pipeline for ``(48, 48)`` uint8 faces.

    Geometric and photometric transforms run on the uint8 image, and erasing runs after
    normalisation so that its fill value 0 is the dataset mean. Transforms whose effective
    probability is 0 are left out, so ``strength=0`` gives exactly
    :func:`build_eval_transform`'s output.

    Args:
        cfg: Augmentation settings; ``cfg.strength`` is applied here.
        mean: Pixel mean of the training images as a fraction of 255.
        std: Pixel standard deviation as a fraction of 255.
        seed: Seed of the transform's random stream, or None for OS entropy. Pass the
            DataLoader :func:`seed_worker_transform` as well when it uses workers.

    Returns:
        A Compose that maps ``image=`` a ``(48, 48)`` uint8 array to a float32 tensor
        ``(1, 48, 48)`` under the ``"image"`` key.

    Raises:
        ValueError: ``mean`` or ``std`` is outside its range.
    """
    _check_normalisation(mean, std)
    effective = apply_strength(cfg)

    uint8_transforms: list[A.BasicTransform | A.BaseCompose] = []

    if effective.hflip.p > 0:
        uint8_transforms.append(A.HorizontalFlip(p=effective.hflip.p))

    affine = effective.affine
    if affine.p > 0 and (affine.shift > 0 or affine.scale > 0 or affine.rotate > 0):
        uint8_transforms.append(
            A.Affine(
                translate_percent=(-affine.shift, affine.shift),
                scale=(1.0 - affine.scale, 1.0 + affine.scale),
                rotate=(-affine.rotate, affine.rotate),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                p=affine.p,
            )
        )

    crop = effective.crop
    if crop.p > 0 and crop.padding > 0:
        # Sequential applies pad and crop together or not at all, so the output stays 48x48.
        padded_side = IMAGE_SIZE + 2 * crop.padding
        uint8_transforms.append(
            A.Sequential(
                [
                    A.PadIfNeeded(
                        min_height=padded_side, min_width=padded_side, border_mode=cv2.BORDER_CONSTANT, fill=0
                    ),
                    A.RandomCrop(height=IMAGE_SIZE, width=IMAGE_SIZE),
                ],
                p=crop.p,
            )
        )

    photometric = effective.brightness_contrast
    if photometric.p > 0 and (photometric.brightness > 0 or photometric.contrast > 0):
        uint8_transforms.append(
            A.RandomBrightnessContrast(
                brightness_limit=photometric.brightness, contrast_limit=photometric.contrast, p=photometric.p
            )
        )

    normalised_transforms: list[A.BasicTransform] = []
    if effective.erasing.p > 0:
        normalised_transforms.append(
            A.Erasing(scale=effective.erasing.scale, ratio=effective.erasing.ratio, fill=0, p=effective.erasing.p)
        )

    normalise, to_tensor = _normalise_to_tensor(mean, std)
    transform = A.Compose([*uint8_transforms, normalise, *normalised_transforms, to_tensor])
    reseed_transform(transform, seed)

    logger.debug("train transform (strength %.3g): %s", cfg.strength, transform)
    return transform


def build_eval_transform(mean: float, std: float) -> A.Compose:
    """Build the deterministic pipeline: normalise a ``(48, 48)`` uint8 face to a ``(1, 48, 48)`` float32 tensor.

    Raises:
        ValueError: ``mean`` or ``std`` is outside its range.
    """
    _check_normalisation(mean, std)
    return A.Compose(_normalise_to_tensor(mean, std))


def reseed_transform(transform: A.BaseCompose, seed: int | None) -> None:
    """Give ``transform`` and all its children one shared random stream seeded with ``seed``.

    ``A.Compose(seed=...)`` (albumentations 2.0.8) seeds each child with the same seed, so
    children that draw the same number of values per call make identical decisions. A
    shared stream keeps them independent and still reproducible.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def seed_worker_transform(worker_id: int) -> None:
    """Reseed the dataset's ``transform`` in a DataLoader worker; pass as ``worker_init_fn``.

    The seed is torch's per-worker seed (base seed + ``worker_id``), whose base seed is
    drawn from the DataLoader's generator each epoch. The dataset, or the dataset inside
    a :class:`torch.utils.data.Subset`, must store its albumentations pipeline in a
    ``transform`` attribute.

    Raises:
        RuntimeError: called outside a DataLoader worker.
        TypeError: the dataset has no albumentations ``transform`` attribute.
    """
    info = torch.utils.data.get_worker_info()
    if info is None:
        raise RuntimeError("seed_worker_transform must run inside a DataLoader worker; pass it as worker_init_fn")

    dataset = info.dataset
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset

    transform = getattr(dataset, "transform", None)
    if not isinstance(transform, A.BaseCompose):
        raise TypeError(
            f"seed_worker_transform: {type(dataset).__name__}.transform is {type(transform).__name__}, "
            "expected an albumentations Compose; store the pipeline in dataset.transform"
        )

    reseed_transform(transform, info.seed)
    logger.debug("worker %d: transform reseeded with %d", worker_id, info.seed)


def build_mixup(cfg: MixupConfig, num_classes: int) -> Mixup | None:
    """Build timm's batch-level mixup/cutmix, or return None when it would never mix.

    The returned callable maps ``(images, labels)`` with integer labels ``(B,)`` to mixed
    images and soft targets ``(B, num_classes)``. It overwrites ``images`` in place. The
    targets already include label smoothing, so train with a soft-target loss such as
    ``timm.loss.SoftTargetCrossEntropy``. timm requires an even batch size (it raises
    AssertionError otherwise), so drop the last incomplete batch (``drop_last=True``).

    Raises:
        ValueError: ``num_classes`` is below 2.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} is invalid: mixup needs at least 2 classes")

    if (cfg.mixup_alpha == 0 and cfg.cutmix_alpha == 0) or cfg.prob == 0:
        return None

    return Mixup(
        mixup_alpha=cfg.mixup_alpha,
        cutmix_alpha=cfg.cutmix_alpha,
        prob=cfg.prob,
        switch_prob=cfg.switch_prob,
        mode=cfg.mode,
        label_smoothing=cfg.label_smoothing,
        num_classes=num_classes,
    )


def measure_transform_throughput(transform: A.BaseCompose, images: np.ndarray, repeats: int = 3) -> float:
    """Measure how many images per second ``transform`` processes in the calling thread.

    Each repeat applies ``transform`` once to every image. One warm-up call runs first,
    and the result is the median over repeats. OpenCV may use several threads inside a
    call, so pin the process (``taskset -c 0``) for a one-core number.

    Args:
        transform: Pipeline called as ``transform(image=...)``.
        images: Stack ``(N, H, W)`` of uint8 images with N >= 1.
        repeats: Number of timed passes over ``images``.

    Returns:
        Images per second.

    Raises:
        ValueError: ``images`` is not a non-empty ``(N, H, W)`` uint8 array, or
            ``repeats`` is below 1.
    """
    if not isinstance(images, np.ndarray) or images.ndim != 3 or images.shape[0] == 0 or images.dtype != np.uint8:
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise ValueError(f"images must be a non-empty (N, H, W) uint8 array, got shape {shape} and dtype {dtype}")
    if repeats < 1:
        raise ValueError(f"repeats={repeats} is invalid: expected at least 1")

    transform(image=images[0])

    seconds_per_pass = []
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            transform(image=image)
        seconds_per_pass.append(time.perf_counter() - start)

    return images.shape[0] / statistics.median(seconds_per_pass)
