"""Blend methods on crafted OOF probabilities with a known best blend."""

import numpy as np
import pytest

from fer_kaggle.blend import BLEND_METHODS, fit_blend, fit_hillclimb, fit_stack, fit_weighted, score_probs
from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.errors import ConfigError

N = 420
K = 3


def one_hot_model(labels: np.ndarray, confidence: float) -> np.ndarray:
    """Probabilities that give ``confidence`` to the true class and share the rest evenly."""
    probs = np.full((len(labels), NUM_CLASSES), (1 - confidence) / (NUM_CLASSES - 1))
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def noisy_model(labels: np.ndarray, rng: np.random.Generator, signal: float) -> np.ndarray:
    """Random probabilities with ``signal`` extra mass on the true class (0: pure noise)."""
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=len(labels))
    probs[np.arange(len(labels)), labels] += signal
    return probs / probs.sum(axis=1, keepdims=True)


@pytest.fixture
def crafted() -> dict[str, np.ndarray]:
    """A random model (index 0) and a perfect one (index 1), with their labels and folds."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, size=N)
    oof = np.stack([noisy_model(labels, rng, 0.0), one_hot_model(labels, 0.9)])
    test_labels = rng.integers(0, NUM_CLASSES, size=50)
    test = np.stack([noisy_model(test_labels, rng, 0.0), one_hot_model(test_labels, 0.9)])
    return {"labels": labels, "oof": oof, "test": test, "test_labels": test_labels, "folds": np.arange(N) % K}


def test_weighted_prefers_perfect(crafted: dict) -> None:
    weights = fit_weighted(crafted["oof"], crafted["labels"])

    assert weights[1] > 0.99
    assert weights.sum() == pytest.approx(1.0)
    assert (weights >= 0).all()


def test_weighted_splits_complementary_models() -> None:
    """Each model is sure on its own half of the rows and uniform on the other: by symmetry, 1/2 each."""
    labels = np.random.default_rng(1).integers(0, NUM_CLASSES, size=N)
    uniform = np.full((N, NUM_CLASSES), 1 / NUM_CLASSES)
    even = (np.arange(N) % 2 == 0)[:, None]
    confident = one_hot_model(labels, 0.9)
    oof = np.stack([np.where(even, confident, uniform), np.where(even, uniform, confident)])

    weights = fit_weighted(oof, labels)

    assert weights[0] == pytest.approx(0.5, abs=1e-3)
    assert weights[1] == pytest.approx(0.5, abs=1e-3)


def test_weighted_beats_each_model() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, NUM_CLASSES, size=N)
    oof = np.stack([noisy_model(labels, rng, 0.5), noisy_model(labels, rng, 0.5), noisy_model(labels, rng, 0.0)])

    blend = fit_blend("weighted", oof, labels, oof)

    single_losses = [score_probs(probs, labels)[1] for probs in oof]
    assert blend.oof_log_loss <= min(single_losses)


def test_hillclimb_picks_perfect(crafted: dict) -> None:
    weights, picks = fit_hillclimb(crafted["oof"], crafted["labels"])

    assert picks == [1]
    assert weights.tolist() == [0.0, 1.0]


def test_hillclimb_accuracy_metric(crafted: dict) -> None:
    weights, _ = fit_hillclimb(crafted["oof"], crafted["labels"], metric="accuracy", iterations=10)

    assert weights[1] == 1.0


def test_hillclimb_rejects_bad_metric(crafted: dict) -> None:
    with pytest.raises(ValueError, match="metric"):
        fit_hillclimb(crafted["oof"], crafted["labels"], metric="auc")  # type: ignore[arg-type]


def test_stack_beats_chance(crafted: dict) -> None:
    blend = fit_blend("stack", crafted["oof"], crafted["labels"], crafted["test"], folds=crafted["folds"])

    assert blend.oof_accuracy > 0.9
    assert (blend.test_probs.argmax(axis=1) == crafted["test_labels"]).mean() > 0.9
    assert blend.weights is None
    assert len(blend.details["coefficients"]) == NUM_CLASSES


def test_stack_oof_is_cross_validated() -> None:
    """Pure-noise models: a meta-model that saw its own rows would score above chance."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, NUM_CLASSES, size=N)
    oof = rng.dirichlet(np.ones(NUM_CLASSES), size=(3, N))

    oof_probs, _, _ = fit_stack(oof, labels, np.arange(N) % K, oof[:, :10])

    assert (oof_probs.argmax(axis=1) == labels).mean() < 0.25


def test_stack_fills_missing_class() -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, NUM_CLASSES - 1, size=N)
    oof = np.stack([noisy_model(labels, rng, 1.0)])

    oof_probs, test_probs, _ = fit_stack(oof, labels, np.arange(N) % K, oof[:, :10])

    assert oof_probs.shape == (N, NUM_CLASSES)
    assert np.all(test_probs[:, NUM_CLASSES - 1] == 0.0)


def test_stack_needs_two_folds(crafted: dict) -> None:
    with pytest.raises(ConfigError, match="at least 2 folds"):
        fit_blend("stack", crafted["oof"], crafted["labels"], crafted["test"], folds=np.zeros(N, dtype=int))


@pytest.mark.parametrize("method", BLEND_METHODS)
def test_blend_is_deterministic(method: str, crafted: dict) -> None:
    first = fit_blend(method, crafted["oof"], crafted["labels"], crafted["test"], folds=crafted["folds"])
    second = fit_blend(method, crafted["oof"], crafted["labels"], crafted["test"], folds=crafted["folds"])

    assert np.array_equal(first.test_probs, second.test_probs)


@pytest.mark.parametrize("method", BLEND_METHODS)
def test_blend_outputs_are_probabilities(method: str, crafted: dict) -> None:
    blend = fit_blend(method, crafted["oof"], crafted["labels"], crafted["test"], folds=crafted["folds"])

    assert blend.test_probs.shape == (50, NUM_CLASSES)
    assert np.allclose(blend.test_probs.sum(axis=1), 1.0)
    assert np.allclose(blend.oof_probs.sum(axis=1), 1.0)


def test_mean_weights_are_equal(crafted: dict) -> None:
    blend = fit_blend("mean", crafted["oof"], crafted["labels"], crafted["test"])

    assert blend.weights.tolist() == [0.5, 0.5]
    assert np.allclose(blend.test_probs, crafted["test"].mean(axis=0))


def test_unknown_method_rejected(crafted: dict) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        fit_blend("median", crafted["oof"], crafted["labels"], crafted["test"])
