"""Tests for fer_kaggle.augment: pipelines, strength, configs, mixup and seeding."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.data import Mixup

from fer_kaggle.augment import (
    AugmentConfig,
    MixupConfig,
    apply_strength,
    build_eval_transform,
    build_mixup,
    build_train_transform,
    measure_transform_throughput,
    seed_worker_transform,
)
from fer_kaggle.config import load_yaml_config
from fer_kaggle.constants import IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.errors import ConfigError

MEAN = 0.5
STD = 0.25
AUGMENTATIONS = ("hflip", "affine", "crop", "brightness_contrast", "erasing")


@pytest.fixture
def faces() -> np.ndarray:
    """Return eight random uint8 'faces'. Noise is asymmetric, so every augmentation changes it."""
    return np.random.default_rng(0).integers(0, 256, size=(8, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)


def only(name: str, p: float) -> AugmentConfig:
    """Return the default config with every augmentation off except ``name``, which gets probability ``p``."""
    cfg = AugmentConfig()
    for other in AUGMENTATIONS:
        getattr(cfg, other).p = p if other == name else 0.0
    return cfg


def apply(transform, image: np.ndarray) -> torch.Tensor:
    return transform(image=image)["image"]


def test_train_output_shape(faces):
    output = apply(build_train_transform(AugmentConfig(), MEAN, STD, seed=0), faces[0])

    assert isinstance(output, torch.Tensor)
    assert output.shape == (1, IMAGE_SIZE, IMAGE_SIZE)
    assert output.dtype == torch.float32


def test_eval_normalisation(faces):
    output = apply(build_eval_transform(MEAN, STD), faces[0])
    expected = (faces[0].astype(np.float32) / 255.0 - MEAN) / STD

    assert output.shape == (1, IMAGE_SIZE, IMAGE_SIZE)
    assert output.dtype == torch.float32
    np.testing.assert_allclose(output[0].numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("mean", "std"), [(-0.1, 0.25), (127.0, 0.25), (0.5, 0.0), (0.5, 64.0), (float("nan"), 0.25)])
def test_normalisation_rejects_range(mean, std):
    with pytest.raises(ValueError, match="fraction of 255"):
        build_eval_transform(mean, std)
    with pytest.raises(ValueError, match="fraction of 255"):
        build_train_transform(AugmentConfig(), mean, std)


def test_strength_zero_equals_eval(faces):
    train = build_train_transform(AugmentConfig(strength=0.0), MEAN, STD, seed=0)
    evaluation = build_eval_transform(MEAN, STD)

    for image in faces:
        assert torch.equal(apply(train, image), apply(evaluation, image))


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentation_p1_changes(faces, name):
    train = build_train_transform(only(name, 1.0), MEAN, STD, seed=0)
    evaluation = build_eval_transform(MEAN, STD)

    changed = [not torch.equal(apply(train, image), apply(evaluation, image)) for image in faces]

    # A random crop can land on the unpadded position (1 in 81 for padding 4), so one
    # unchanged image out of eight is allowed.
    assert sum(changed) >= len(faces) - 1


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentation_p0_unchanged(faces, name):
    train = build_train_transform(only(name, 0.0), MEAN, STD, seed=0)
    evaluation = build_eval_transform(MEAN, STD)

    for image in faces:
        assert torch.equal(apply(train, image), apply(evaluation, image))


def test_hflip_p1_mirrors(faces):
    train = build_train_transform(only("hflip", 1.0), MEAN, STD, seed=0)
    evaluation = build_eval_transform(MEAN, STD)

    for image in faces:
        assert torch.equal(apply(train, image), apply(evaluation, image).flip(-1))


def test_apply_strength_half():
    cfg = AugmentConfig(strength=0.5)
    scaled = apply_strength(cfg)

    assert scaled.strength == 1.0
    assert scaled.hflip.p == pytest.approx(cfg.hflip.p / 2)
    assert scaled.affine.rotate == pytest.approx(cfg.affine.rotate / 2)
    assert scaled.affine.shift == pytest.approx(cfg.affine.shift / 2)
    assert scaled.crop.padding == round(cfg.crop.padding / 2)
    assert scaled.brightness_contrast.contrast == pytest.approx(cfg.brightness_contrast.contrast / 2)
    assert scaled.erasing.scale[1] == pytest.approx(cfg.erasing.scale[1] / 2)


def test_apply_strength_saturates():
    cfg = AugmentConfig(strength=2.0)
    cfg.hflip.p = 0.9
    cfg.affine.rotate = 170.0

    scaled = apply_strength(cfg)

    assert scaled.hflip.p == 1.0
    assert scaled.affine.rotate == 180.0


def test_strength_two_builds(faces):
    output = apply(build_train_transform(AugmentConfig(strength=2.0), MEAN, STD, seed=0), faces[0])

    assert output.shape == (1, IMAGE_SIZE, IMAGE_SIZE)


def test_seed_reproducible(faces):
    first = build_train_transform(AugmentConfig(), MEAN, STD, seed=7)
    second = build_train_transform(AugmentConfig(), MEAN, STD, seed=7)

    for _ in range(3):
        for image in faces:
            assert torch.equal(apply(first, image), apply(second, image))


def test_seed_different(faces):
    first = build_train_transform(AugmentConfig(), MEAN, STD, seed=7)
    second = build_train_transform(AugmentConfig(), MEAN, STD, seed=8)

    outputs_first = torch.stack([apply(first, image) for image in faces])
    outputs_second = torch.stack([apply(second, image) for image in faces])

    assert not torch.equal(outputs_first, outputs_second)


def test_seed_transforms_independent(faces):
    # Albumentations 2.0.8 seeds each child with the compose seed. A flip and a padded
    # crop, each drawing one number per call, would then always fire together.
    cfg = only("hflip", 0.5)
    cfg.crop.p = 0.5
    train = build_train_transform(cfg, MEAN, STD, seed=3)
    train.save_applied_params = True

    decisions = set()
    for _ in range(32):
        applied = {name for name, _ in train(image=faces[0])["applied_transforms"]}
        decisions.add(("HorizontalFlip" in applied, "RandomCrop" in applied))

    assert (True, False) in decisions
    assert (False, True) in decisions


class _FixedImageDataset(torch.utils.data.Dataset):
    """Return the same image augmented by ``transform``, so outputs differ only through the random stream."""

    def __init__(self, transform, image: np.ndarray, length: int = 4) -> None:
        self.transform = transform
        self.image = image
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(image=self.image)["image"]


def _epochs(dataset: torch.utils.data.Dataset, loader_seed: int, epochs: int = 2) -> list[torch.Tensor]:
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=1,
        num_workers=2,
        worker_init_fn=seed_worker_transform,
        generator=torch.Generator().manual_seed(loader_seed),
        multiprocessing_context="fork",
    )
    return [torch.cat(list(loader)) for _ in range(epochs)]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_worker_seeding(faces):
    transform = build_train_transform(only("affine", 1.0), MEAN, STD, seed=0)
    dataset = _FixedImageDataset(transform, faces[0])

    first_run = _epochs(dataset, loader_seed=11)
    second_run = _epochs(dataset, loader_seed=11)

    # Items 0 and 1 come from workers 0 and 1; without reseeding both are the same draw.
    assert not torch.equal(first_run[0][0], first_run[0][1])
    assert not torch.equal(first_run[0], first_run[1])
    assert torch.equal(first_run[0], second_run[0])
    assert torch.equal(first_run[1], second_run[1])


def test_worker_seeding_outside_worker():
    with pytest.raises(RuntimeError, match="worker_init_fn"):
        seed_worker_transform(0)


@pytest.mark.parametrize("cfg", [MixupConfig(), MixupConfig(mixup_alpha=0.0, cutmix_alpha=0.0, prob=1.0)])
def test_mixup_off_none(cfg):
    assert build_mixup(cfg, NUM_CLASSES) is None


def test_mixup_prob_zero_none():
    assert build_mixup(MixupConfig(mixup_alpha=0.4, prob=0.0), NUM_CLASSES) is None


@pytest.mark.parametrize("cfg", [MixupConfig(mixup_alpha=1.0), MixupConfig(cutmix_alpha=1.0, label_smoothing=0.0)])
def test_mixup_soft_targets(cfg):
    mixup = build_mixup(cfg, NUM_CLASSES)
    assert isinstance(mixup, Mixup)

    np.random.seed(0)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    # Batch mode mixes item i with item 7 - i; these labels differ within every pair.
    labels = torch.arange(8) % 4
    mixed, targets = mixup(images.clone(), labels)

    assert mixed.shape == images.shape
    assert not torch.equal(mixed, images)
    assert targets.shape == (8, NUM_CLASSES)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(8))
    assert bool((targets < 1.0).all())


def test_mixup_rejects_classes():
    with pytest.raises(ValueError, match="num_classes"):
        build_mixup(MixupConfig(mixup_alpha=1.0), 1)


def test_yaml_config_loads(tmp_path: Path):
    path = tmp_path / "augment.yaml"
    path.write_text("strength: 0.5\nhflip: {p: 0.3}\nerasing: {scale: [0.05, 0.2]}\n", encoding="utf-8")

    cfg = load_yaml_config(path, AugmentConfig)

    assert cfg.strength == 0.5
    assert cfg.hflip.p == 0.3
    assert cfg.erasing.scale == (0.05, 0.2)
    assert cfg.affine == AugmentConfig().affine


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("affine: {rotation: 15}\n", "affine.rotation"),
        ("blur: {p: 0.5}\n", "blur"),
        ("crop: {padding: 30}\n", "crop.padding"),
        ("hflip: {p: 1.5}\n", "hflip.p"),
        ("strength: -1\n", "strength"),
        ("erasing: {scale: [0.3, 0.1]}\n", "erasing"),
    ],
)
def test_yaml_config_rejects(tmp_path: Path, text: str, key: str):
    path = tmp_path / "augment.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=key) as error:
        load_yaml_config(path, AugmentConfig)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [("mixup_alpha: -0.2\n", "mixup_alpha"), ("label_smoothing: 1.0\n", "label_smoothing"), ("alpha: 1\n", "alpha")],
)
def test_yaml_mixup_rejects(tmp_path: Path, text: str, key: str):
    path = tmp_path / "mixup.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=key):
        load_yaml_config(path, MixupConfig)


def test_throughput_positive(faces):
    rate = measure_transform_throughput(build_eval_transform(MEAN, STD), faces, repeats=1)

    assert rate > 0.0


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
        np.zeros((2, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32),
        np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
    ],
)
def test_throughput_rejects_images(images):
    with pytest.raises(ValueError, match="uint8"):
        measure_transform_throughput(build_eval_transform(MEAN, STD), images)


def test_throughput_rejects_repeats(faces):
    with pytest.raises(ValueError, match="repeats"):
        measure_transform_throughput(build_eval_transform(MEAN, STD), faces, repeats=0)
