"""Tests for the synthetic FER-like data set."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS
from fer_kaggle.synth import (
    FER2013_TRAIN_CLASS_COUNTS,
    generate_faces,
    make_synthetic_frame,
    write_synthetic_csv,
)

UNIFORM = [1.0] * NUM_CLASSES


def test_generate_faces_shapes_and_dtypes():
    images, labels = generate_faces(37, seed=3)

    assert images.shape == (37, IMAGE_SIZE, IMAGE_SIZE)
    assert images.dtype == np.uint8
    assert labels.shape == (37,)
    assert labels.dtype == np.int64
    assert labels.min() >= 0
    assert labels.max() < NUM_CLASSES


def test_generate_faces_uses_pixel_range():
    images, _ = generate_faces(50, seed=0)

    assert images.min() < 30
    assert images.max() > 225
    assert images.std() > 20


def test_generate_faces_same_seed_same_bytes():
    images_a, labels_a = generate_faces(300, seed=5)
    images_b, labels_b = generate_faces(300, seed=5)

    assert images_a.tobytes() == images_b.tobytes()
    assert labels_a.tobytes() == labels_b.tobytes()


def test_generate_faces_other_seed_differs():
    images_a, _ = generate_faces(20, seed=5)
    images_b, _ = generate_faces(20, seed=6)

    assert not np.array_equal(images_a, images_b)


def test_generate_faces_default_proportions():
    n = 2000
    _, labels = generate_faces(n, seed=1)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    expected = np.asarray(FER2013_TRAIN_CLASS_COUNTS) / sum(FER2013_TRAIN_CLASS_COUNTS) * n

    assert counts.sum() == n
    assert np.all(np.abs(counts - expected) <= 1)


def test_generate_faces_disgust_rarest():
    _, labels = generate_faces(500, seed=2)
    counts = np.bincount(labels, minlength=NUM_CLASSES)

    assert counts[1] > 0
    assert counts.argmin() == 1


def test_generate_faces_custom_weights():
    weights = [0, 1, 0, 3, 0, 0, 0]
    _, labels = generate_faces(400, seed=0, class_weights=weights)
    counts = np.bincount(labels, minlength=NUM_CLASSES)

    assert counts[1] == 100
    assert counts[3] == 300
    assert counts.sum() == 400


def test_generate_faces_labels_shuffled():
    _, labels = generate_faces(200, seed=0, class_weights=UNIFORM)

    assert not np.all(np.diff(labels) >= 0)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"n": 0}, "n"),
        ({"n": -3}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": 10, "seed": -1}, "seed"),
        ({"n": 10, "class_weights": [1.0] * 6}, "class_weights"),
        ({"n": 10, "class_weights": [1, -1, 1, 1, 1, 1, 1]}, "class_weights"),
        ({"n": 10, "class_weights": [0] * 7}, "class_weights"),
        ({"n": 10, "class_weights": [1, float("nan"), 1, 1, 1, 1, 1]}, "class_weights"),
        ({"n": 10, "class_weights": ["a"] * 7}, "class_weights"),
    ],
)
def test_generate_faces_invalid_arguments(kwargs, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter}:"):
        generate_faces(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"n_train": 0}, "n_train"),
        ({"n_public": -1}, "n_public"),
        ({"n_private": -1}, "n_private"),
        ({"seed": -2}, "seed"),
    ],
)
def test_make_synthetic_frame_invalid_arguments(kwargs, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter}:"):
        make_synthetic_frame(**kwargs)


def test_make_synthetic_frame_split_order():
    frame = make_synthetic_frame(n_train=30, n_public=10, n_private=5, seed=0)
    expected_usage = ["Training"] * 30 + ["PublicTest"] * 10 + ["PrivateTest"] * 5

    assert list(frame.columns) == ["emotion", "pixels", "Usage"]
    assert frame["Usage"].tolist() == expected_usage
    assert frame["emotion"].dtype == np.int64


def test_make_synthetic_frame_splits_differ():
    frame = make_synthetic_frame(n_train=10, n_public=10, n_private=10, seed=0)
    pixels_by_split = frame.groupby("Usage", sort=False)["pixels"].apply(list)

    assert pixels_by_split["Training"] != pixels_by_split["PublicTest"]
    assert pixels_by_split["PublicTest"] != pixels_by_split["PrivateTest"]


def test_make_synthetic_frame_zero_test_rows():
    frame = make_synthetic_frame(n_train=8, n_public=0, n_private=4, seed=0)

    assert frame["Usage"].value_counts().to_dict() == {"Training": 8, "PrivateTest": 4}


def test_make_synthetic_frame_pixel_values():
    frame = make_synthetic_frame(n_train=6, n_public=0, n_private=0, seed=4)
    first = np.array(frame["pixels"].iloc[0].split(), dtype=np.int64)

    assert first.shape == (NUM_PIXELS,)
    assert first.min() >= 0
    assert first.max() <= 255


def test_write_synthetic_csv_layout(tmp_path):
    path = write_synthetic_csv(tmp_path / "data", n_train=20, n_public=6, n_private=4, seed=0)
    frame = pd.read_csv(path)
    pixel_counts = frame["pixels"].str.split().str.len()

    assert path == tmp_path / "data" / "fer2013.csv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "emotion,pixels,Usage"
    assert set(frame["Usage"]) == {"Training", "PublicTest", "PrivateTest"}
    assert (pixel_counts == NUM_PIXELS).all()
    assert frame["emotion"].between(0, NUM_CLASSES - 1).all()


def test_write_synthetic_csv_same_seed_same_bytes(tmp_path):
    first = write_synthetic_csv(tmp_path / "a", n_train=15, n_public=5, n_private=5, seed=9)
    second = write_synthetic_csv(tmp_path / "b", n_train=15, n_public=5, n_private=5, seed=9)
    other = write_synthetic_csv(tmp_path / "c", n_train=15, n_public=5, n_private=5, seed=10)

    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert hashlib.sha256(second.read_bytes()).hexdigest() == digest
    assert hashlib.sha256(other.read_bytes()).hexdigest() != digest


def test_write_synthetic_csv_replaces_without_leftovers(tmp_path):
    (tmp_path / "fer2013.csv").write_text("stale\n", encoding="utf-8")

    path = write_synthetic_csv(tmp_path, n_train=5, n_public=1, n_private=1, seed=0)

    assert path.read_text(encoding="utf-8").startswith("emotion,pixels,Usage\n")
    assert [entry.name for entry in tmp_path.iterdir()] == ["fer2013.csv"]


def test_write_synthetic_csv_invalid_count_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="^n_train:"):
        write_synthetic_csv(tmp_path / "data", n_train=0)

    assert not (tmp_path / "data").exists()


@pytest.fixture(scope="module")
def balanced_faces() -> tuple[np.ndarray, np.ndarray]:
    """Balanced faces standardised per image, so brightness and contrast cancel out."""
    images, labels = generate_faces(2800, seed=7, class_weights=UNIFORM)
    images = images.astype(np.float64)
    images = (images - images.mean((1, 2), keepdims=True)) / images.std((1, 2), keepdims=True)
    return images, labels


def _between_class_spread(features: np.ndarray, labels: np.ndarray) -> float:
    grand_mean = features.mean(0)
    return sum(float(np.sum((features[labels == c].mean(0) - grand_mean) ** 2)) for c in range(NUM_CLASSES))


def test_class_means_beat_label_permutations(balanced_faces):
    # Permutation test: the class means spread more than under any of 20 label
    # shuffles (p < 0.05). Pooling to 12x12 averages out pixel noise.
    images, labels = balanced_faces
    pooled = images.reshape(len(images), 12, 4, 12, 4).mean((2, 4)).reshape(len(images), -1)
    rng = np.random.default_rng(0)

    observed = _between_class_spread(pooled, labels)
    shuffled = [_between_class_spread(pooled, rng.permutation(labels)) for _ in range(20)]

    assert observed > max(shuffled)


def test_surprise_mouth_darker_than_neutral(balanced_faces):
    # Surprise has an open round mouth and Neutral a closed one. The region contains the
    # mouth centre for most of the poses that the generator draws.
    images, labels = balanced_faces
    mouth_region = images[:, 30:40, 18:30].mean((1, 2))
    surprise = mouth_region[labels == CLASS_NAMES.index("Surprise")]
    neutral = mouth_region[labels == CLASS_NAMES.index("Neutral")]
    standard_error = np.hypot(surprise.std() / np.sqrt(len(surprise)), neutral.std() / np.sqrt(len(neutral)))

    assert neutral.mean() - surprise.mean() > 4 * standard_error


def _standardise(images: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(images).float().unsqueeze(1)
    return (tensor - tensor.mean((2, 3), keepdim=True)) / (tensor.std((2, 3), keepdim=True) + 1.0)


def test_tiny_cnn_learns_above_chance():
    # Balanced classes so that chance accuracy is 1/7. Takes about 15 s on one CPU core.
    train_images, train_labels = generate_faces(2100, seed=1, class_weights=UNIFORM)
    test_images, test_labels = generate_faces(700, seed=2, class_weights=UNIFORM)
    x_train, y_train = _standardise(train_images), torch.from_numpy(train_labels)
    x_test, y_test = _standardise(test_images), torch.from_numpy(test_labels)

    # One intra-op thread keeps the run time steady while another process loads the
    # cores. With two threads under such load, the test once took over 2 minutes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _train_tiny_cnn(x_train, y_train)
    finally:
        torch.set_num_threads(threads)

    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 2.0 / NUM_CLASSES, f"held-out accuracy {accuracy:.3f}"


def _train_tiny_cnn(x_train: torch.Tensor, y_train: torch.Tensor) -> nn.Module:
    def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(
            conv_block(1, 8),
            conv_block(8, 16),
            conv_block(16, 32),
            conv_block(32, 32),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, NUM_CLASSES),
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(5):
            model.train()
            for batch in torch.randperm(len(x_train)).split(32):
                loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    return model
