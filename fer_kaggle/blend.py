"""Blending methods that combine the class probabilities of several models.

Every method is fitted on out-of-fold (OOF) probabilities and training labels only, then
applied to the fold-averaged test probabilities. Arrays are stacked by model:
``oof`` has shape (models, N, classes) and ``test`` has shape (models, M, classes).
"""

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import PredefinedSplit, cross_val_predict

from fer_kaggle.constants import NUM_CLASSES
from fer_kaggle.errors import ConfigError

__all__ = [
    "BLEND_METHODS",
    "Blend",
    "score_probs",
    "fit_weighted",
    "fit_hillclimb",
    "fit_stack",
    "fit_blend",
]

logger = logging.getLogger(__name__)

BLEND_METHODS: tuple[str, ...] = ("mean", "weighted", "hillclimb", "stack")

#: Probabilities are clipped to this floor before taking logs (log loss, stack features).
PROB_FLOOR = 1e-7


@dataclass
class Blend:
    """One fitted blend: its OOF and test probabilities and what it chose.

    Attributes:
        method: one of :data:`BLEND_METHODS`.
        oof_probs: (N, classes) blended OOF probabilities. For ``stack`` they are
            cross-validated, so its OOF accuracy is an out-of-sample estimate. For the
            weight-based methods the weights were fitted on the same rows.
        test_probs: (M, classes) blended test probabilities.
        weights: (models,) non-negative weights that sum to 1, or None for ``stack``.
        oof_accuracy: accuracy of ``oof_probs``.
        oof_log_loss: log loss of ``oof_probs``.
        details: JSON-serialisable method settings (iterations, meta-model coefficients).
    """

    method: str
    oof_probs: np.ndarray
    test_probs: np.ndarray
    weights: np.ndarray | None
    oof_accuracy: float
    oof_log_loss: float
    details: dict[str, Any] = field(default_factory=dict)


def score_probs(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Return (accuracy, log loss) of (N, classes) probabilities against integer labels."""
    accuracy = float(accuracy_score(labels, probs.argmax(axis=1)))
    clipped = np.clip(probs, PROB_FLOOR, 1.0)
    loss = float(log_loss(labels, clipped / clipped.sum(axis=1, keepdims=True), labels=np.arange(probs.shape[1])))
    return accuracy, loss


def _true_class_probs(oof: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return (models, N): each model's probability of the true class of each row."""
    return oof[:, np.arange(oof.shape[1]), labels]


def fit_weighted(oof: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fit model weights that minimise the log loss of the weighted mean of OOF probabilities.

    Solved with SLSQP under the constraints weights >= 0 and sum(weights) = 1, from equal
    weights. The log loss of a weighted mean of probabilities is convex in the weights,
    so the solution is the global minimum up to the solver's tolerance.

    Returns:
        (models,) weights.
    """
    n_models = oof.shape[0]
    true_probs = _true_class_probs(oof, labels)

    def loss_and_gradient(weights: np.ndarray) -> tuple[float, np.ndarray]:
        blended = np.maximum(weights @ true_probs, PROB_FLOOR)
        loss = -float(np.mean(np.log(blended)))
        gradient = -(true_probs / blended).mean(axis=1)
        return loss, gradient

    result = minimize(
        loss_and_gradient,
        x0=np.full(n_models, 1.0 / n_models),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_models,
        constraints=[{"type": "eq", "fun": lambda weights: weights.sum() - 1.0, "jac": lambda weights: np.ones_like(weights)}],
        options={"maxiter": 500, "ftol": 1e-10},
    )
    if not result.success:
        logger.warning("weighted blend: SLSQP stopped early (%s); using its last weights", result.message)

    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()


def fit_hillclimb(
    oof: np.ndarray,
    labels: np.ndarray,
    *,
    iterations: int = 100,
    metric: Literal["log_loss", "accuracy"] = "log_loss",
) -> tuple[np.ndarray, list[int]]:
    """Select models greedily, with replacement, as in Caruana et al. (2004).

    Each iteration adds the model whose inclusion gives the best OOF score of the
    averaged ensemble. The returned ensemble is the best one seen over all iterations,
    so a model picked k times out of n has weight k/n. Ties go to the lower model
    index. With ``metric="accuracy"`` the log loss breaks ties, because accuracy changes
    in steps.

    Reference: R. Caruana, A. Niculescu-Mizil, G. Crew, A. Ksikes, "Ensemble Selection
    from Libraries of Models", ICML 2004.

    Returns:
        (models,) weights and the model index picked at each iteration of the kept ensemble.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if metric not in ("log_loss", "accuracy"):
        raise ValueError(f"metric must be 'log_loss' or 'accuracy', got {metric!r}")

    n_models = oof.shape[0]
    rows = np.arange(oof.shape[1])
    total = np.zeros(oof.shape[1:])
    picks: list[int] = []
    best_key: tuple[float, float] | None = None
    best_picks: list[int] = []

    for _ in range(iterations):
        candidates = (total[None] + oof) / (len(picks) + 1)
        # Rounded so that float noise from summing in another order never counts as a gain.
        losses = np.round(-np.log(np.maximum(candidates[:, rows, labels], PROB_FLOOR)).mean(axis=1), 12)
        accuracies = (candidates.argmax(axis=2) == labels).mean(axis=1)
        keys = [(loss, 0.0) if metric == "log_loss" else (-accuracy, loss) for loss, accuracy in zip(losses, accuracies)]
        chosen = min(range(n_models), key=lambda index: keys[index])

        picks.append(chosen)
        total += oof[chosen]
        if best_key is None or keys[chosen] < best_key:
            best_key = keys[chosen]
            best_picks = list(picks)

    weights = np.bincount(best_picks, minlength=n_models) / len(best_picks)
    return weights, best_picks


def _stack_features(probs: np.ndarray) -> np.ndarray:
    """Turn (models, N, classes) probabilities into (N, models * classes) log-probabilities."""
    log_probs = np.log(np.clip(probs, PROB_FLOOR, 1.0))
    return log_probs.transpose(1, 0, 2).reshape(probs.shape[1], -1)


def _full_class_probs(probs: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Place predict_proba columns (one per class seen in training) into all class columns."""
    full = np.zeros((len(probs), n_classes))
    full[:, classes] = probs
    return full


def fit_stack(
    oof: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    test: np.ndarray,
    *,
    C: float = 1.0,  # noqa: N803 (scikit-learn's name)
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Fit a logistic-regression meta-model on OOF log-probabilities of every model.

    The meta-model's own OOF predictions come from ``cross_val_predict`` on the
    training folds the OOF rows came from, so row i is predicted by a meta-model that
    never saw it. The test predictions come from a meta-model fitted on all OOF rows.
    A class missing from a meta-model's training rows gets probability 0.

    Args:
        oof: (models, N, classes) OOF probabilities.
        labels: (N,) integer labels.
        folds: (N,) training fold of each OOF row; needs at least two distinct folds.
        test: (models, M, classes) test probabilities.
        C: inverse L2 regularisation strength of the logistic regression.

    Returns:
        (N, classes) cross-validated OOF probabilities, (M, classes) test
        probabilities, and details (C, coefficients, intercepts, classes).

    Raises:
        ConfigError: fewer than two folds.
    """
    n_classes = oof.shape[2]
    if len(np.unique(folds)) < 2:
        raise ConfigError(f"stack blend needs OOF rows from at least 2 folds, got fold(s) {np.unique(folds).tolist()}; train more folds")

    features = _stack_features(oof)
    meta_model = LogisticRegression(C=C, max_iter=2000)
    with warnings.catch_warnings():
        # Small meta-training sets may miss a class or stop short of lbfgs' tolerance; both are expected here.
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Number of classes in training fold")
        oof_probs = cross_val_predict(meta_model, features, labels, cv=PredefinedSplit(folds), method="predict_proba")
        meta_model.fit(features, labels)

    # cross_val_predict returns one column per class present in ``labels``, in sorted order.
    oof_probs = _full_class_probs(oof_probs, np.unique(labels), n_classes)
    test_probs = _full_class_probs(meta_model.predict_proba(_stack_features(test)), meta_model.classes_, n_classes)
    details = {
        "C": C,
        "features": "log-probabilities of each model, models x classes",
        "classes": meta_model.classes_.tolist(),
        "coefficients": np.round(meta_model.coef_, 6).tolist(),
        "intercepts": np.round(meta_model.intercept_, 6).tolist(),
    }
    return oof_probs, test_probs, details


def fit_blend(
    method: str,
    oof: np.ndarray,
    labels: np.ndarray,
    test: np.ndarray,
    *,
    folds: np.ndarray | None = None,
    hillclimb_iterations: int = 100,
    stack_C: float = 1.0,  # noqa: N803 (scikit-learn's name)
) -> Blend:
    """Fit one blend method on OOF probabilities and apply it to the test probabilities.

    Args:
        method: one of :data:`BLEND_METHODS`.
        oof: (models, N, classes) OOF probabilities, aligned row by row across models.
        labels: (N,) integer labels of the OOF rows.
        test: (models, M, classes) test probabilities.
        folds: (N,) training fold of each OOF row; required by ``stack``.
        hillclimb_iterations: selection steps of ``hillclimb``.
        stack_C: inverse regularisation strength of the ``stack`` meta-model.

    Raises:
        ConfigError: unknown method, mismatched shapes, or ``stack`` without two folds.
    """
    if method not in BLEND_METHODS:
        raise ConfigError(f"blend method {method!r} is unknown; choose from {', '.join(BLEND_METHODS)}")
    if oof.ndim != 3 or test.ndim != 3 or oof.shape[0] != test.shape[0] or oof.shape[2] != test.shape[2]:
        raise ConfigError(f"OOF probabilities {oof.shape} and test probabilities {test.shape} must be (models, rows, classes) with equal models and classes")
    if oof.shape[2] != NUM_CLASSES:
        logger.info("blending %d classes (FER2013 has %d)", oof.shape[2], NUM_CLASSES)

    weights: np.ndarray | None
    details: dict[str, Any] = {}
    if method == "mean":
        weights = np.full(oof.shape[0], 1.0 / oof.shape[0])
    elif method == "weighted":
        weights = fit_weighted(oof, labels)
    elif method == "hillclimb":
        weights, picks = fit_hillclimb(oof, labels, iterations=hillclimb_iterations)
        details = {"iterations": hillclimb_iterations, "metric": "log_loss", "picks": picks}
    else:
        if folds is None:
            raise ConfigError("stack blend needs the training fold of each OOF row (folds=...)")
        oof_probs, test_probs, details = fit_stack(oof, labels, folds, test, C=stack_C)
        accuracy, loss = score_probs(oof_probs, labels)
        return Blend(method, oof_probs, test_probs, None, accuracy, loss, details)

    oof_probs = np.tensordot(weights, oof, axes=1)
    test_probs = np.tensordot(weights, test, axes=1)
    accuracy, loss = score_probs(oof_probs, labels)
    return Blend(method, oof_probs, test_probs, weights, accuracy, loss, details)
