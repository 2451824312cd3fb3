"""Analysis of a trained model: attributions, gradient ascent, restoring the model, and every figure on tiny runs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _analysis_runs import TinyExperiment, build_tiny_experiment
from fer_kaggle.analysis import FIGURE_FILES, analyze, score_models, select_model
from fer_kaggle.analysis.activations import _get_activation_info
from fer_kaggle.analysis.confusion import _get_confusion_info, format_confused_pairs
from fer_kaggle.analysis.filters import _get_filter_info
from fer_kaggle.analysis.layers import default_filter_layer, gradcam_layer_name, resolve_layer
from fer_kaggle.analysis.restore import evaluation_state
from fer_kaggle.analysis.saliency import _get_saliency_info, pick_faces
from fer_kaggle.constants import CLASS_NAMES, IMAGE_SIZE
from fer_kaggle.errors import ConfigError, DataError

#: The pixels that :class:`RegionModel` reads: rows 10-17, columns 26-33.
REGION = (slice(10, 18), slice(26, 34))

#: Fast settings for the figure tests; the defaults are sized for real models.
FAST = {"smoothgrad_samples": 4, "filter_steps": 8}


class RegionModel(nn.Module):
    """A CNN whose logits depend only on the pixels of :data:`REGION`.

    The input is masked before the convolution, which has no bias, so every gradient and
    every activation outside the region (grown by the 3x3 kernel's 1-pixel border) is zero.
    Positive weights make the Grad-CAM of every class positive somewhere in the region.
    """

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)
        mask[:, :, REGION[0], REGION[1]] = 1.0
        self.register_buffer("mask", mask)
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, len(CLASS_NAMES))
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.conv.weight.copy_(torch.rand(self.conv.weight.shape, generator=generator))
            self.fc.weight.copy_(torch.rand(self.fc.weight.shape, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(x * self.mask))
        return self.fc(self.norm(features).mean(dim=(2, 3)))


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, len(CLASS_NAMES)),
    )


def random_faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)


def region_share(maps: np.ndarray) -> float:
    """Share of the total attribution inside the region grown by one pixel."""
    inside = np.zeros(maps.shape[1:], dtype=bool)
    inside[REGION[0].start - 1 : REGION[0].stop + 1, REGION[1].start - 1 : REGION[1].stop + 1] = True
    return float(np.abs(maps[:, inside]).sum() / np.abs(maps).sum())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyExperiment:
    return build_tiny_experiment(tmp_path_factory.mktemp("analysis"))


# Attributions and gradient ascent on purpose-built models.


@pytest.mark.parametrize("method", ["vanilla", "smoothgrad", "gradcam"])
def test_saliency_points_at_region(method: str) -> None:
    model = RegionModel()
    faces = random_faces(6)

    info = _get_saliency_info(model, faces, np.zeros(6, dtype=np.int64), smoothgrad_samples=8)
    maps = getattr(info, method)

    assert info.gradcam_layer == "conv"
    assert np.abs(maps).sum() > 0
    assert region_share(maps) > 0.99


def test_saliency_same_seed_same_maps() -> None:
    model, faces = RegionModel(), random_faces(3)

    first = _get_saliency_info(model, faces, np.zeros(3, dtype=np.int64), smoothgrad_samples=4, seed=1)
    second = _get_saliency_info(model, faces, np.zeros(3, dtype=np.int64), smoothgrad_samples=4, seed=1)

    assert np.array_equal(first.smoothgrad, second.smoothgrad)


def test_gradient_ascent_raises_activation() -> None:
    model = small_cnn()
    info = _get_filter_info(model, "3", steps=60)

    # The spread of each filter's mean activation over fresh noise images like the start.
    noise = 0.5 + 0.05 * torch.randn(32, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        noise_means = model[:4].eval()((noise.clamp(0, 1) - 0.5) / 0.25).mean(dim=(2, 3)).numpy()
    noise_max, noise_std = noise_means.max(axis=0), noise_means.std(axis=0)

    assert info.images.shape == (6, IMAGE_SIZE, IMAGE_SIZE)
    assert info.images.min() >= 0.0
    assert info.images.max() <= 1.0
    assert (info.final_activation > info.start_activation).all()
    assert (info.final_activation > noise_max + 10 * noise_std).all()


def test_activation_maps_shape() -> None:
    model = small_cnn()
    info = _get_activation_info(model, random_faces(1)[0], "2", face_id=7)

    assert info.maps.shape == (4, IMAGE_SIZE, IMAGE_SIZE)
    assert info.maps.min() >= 0.0  # the output of a ReLU
    assert info.face_id == 7


def test_activation_layer_without_maps() -> None:
    with pytest.raises(ConfigError, match=r"'7' outputs shape \(1, 7\).*layers with feature maps: 0, 1, 2, 3, 4, 5"):
        _get_activation_info(small_cnn(), random_faces(1)[0], "7")


# The model is left as it was found.


def mixed_state_model() -> nn.Sequential:
    """A model in training mode with one BatchNorm in eval mode and a frozen first conv."""
    model = small_cnn().train()
    model[1].eval()
    model[0].weight.requires_grad_(False)
    return model


def model_state(model: nn.Module) -> dict:
    return {
        "training": [module.training for module in model.modules()],
        "requires_grad": [parameter.requires_grad for parameter in model.parameters()],
        "grads": [parameter.grad for parameter in model.parameters()],
        "hooks": sum(
            len(module._forward_hooks) + len(module._forward_pre_hooks) + len(module._backward_hooks)
            + len(module._backward_pre_hooks)
            for module in model.modules()
        ),
        "weights": {name: tensor.clone() for name, tensor in model.state_dict().items()},
    }


ANALYSES = {
    "saliency": lambda model: _get_saliency_info(model, random_faces(2), np.zeros(2, dtype=np.int64), smoothgrad_samples=2, gradcam_layer="3"),
    "filters": lambda model: _get_filter_info(model, "3", steps=3),
    "activations": lambda model: _get_activation_info(model, random_faces(1)[0], "3"),
    "activations error": lambda model: _get_activation_info(model, random_faces(1)[0], "7"),
}


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_analysis_restores_model(analysis: str) -> None:
    model = mixed_state_model()
    before = model_state(model)

    try:
        ANALYSES[analysis](model)
    except ConfigError:
        assert analysis == "activations error"
    after = model_state(model)

    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert all(grad is None for grad in after["grads"])
    assert after["hooks"] == 0
    for name, tensor in before["weights"].items():
        assert torch.equal(after["weights"][name], tensor), name


def test_evaluation_state_restores_after_error() -> None:
    model = mixed_state_model()
    before = model_state(model)

    with pytest.raises(RuntimeError, match="inside"), evaluation_state(model, freeze=True):
        assert not any(module.training for module in model.modules())
        raise RuntimeError("inside")

    assert model_state(model)["training"] == before["training"]
    assert model_state(model)["requires_grad"] == before["requires_grad"]


# Layer names.


def test_unknown_layer_lists_names() -> None:
    with pytest.raises(ConfigError, match=r"no layer named 'head'; valid names: 0, 1, 2, 3, 4, 5, 6, 7$"):
        resolve_layer(small_cnn(), "head", conv_only=False)


def test_filters_need_conv_layer() -> None:
    with pytest.raises(ConfigError, match=r"no Conv2d layer named '2'; valid names: 0, 3$"):
        _get_filter_info(small_cnn(), "2", steps=1)


def test_default_layers() -> None:
    model = small_cnn()

    assert default_filter_layer(model) == "3"
    assert gradcam_layer_name(model) == "3"
    with pytest.raises(ConfigError, match="has no Conv2d layer"):
        default_filter_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


# Confusion matrices and face picking.


def test_confusion_info_counts() -> None:
    fear, sad, angry, happy = (CLASS_NAMES.index(name) for name in ("Fear", "Sad", "Angry", "Happy"))
    labels = np.array([fear] * 4 + [angry] * 2 + [happy] * 3)
    predictions = np.array([sad, sad, sad, fear, happy, angry, happy, happy, happy])

    info = _get_confusion_info(labels, predictions, title="OOF")

    assert info.counts.sum() == len(labels)
    assert info.counts[fear, sad] == 3
    assert np.allclose(info.normalised[[fear, angry, happy]].sum(axis=1), 1.0)
    assert np.array_equal(info.normalised[CLASS_NAMES.index("Disgust")], np.zeros(len(CLASS_NAMES)))
    assert info.accuracy == pytest.approx(5 / 9)
    assert [(pair.true, pair.predicted, pair.count) for pair in info.pairs] == [("Fear", "Sad", 3), ("Angry", "Happy", 1)]
    assert info.pairs[0].share == pytest.approx(0.75)
    assert "Fear taken for Sad: 3 faces (75.0% of Fear)" in format_confused_pairs([info])


def test_confusion_info_rejects_mismatch() -> None:
    with pytest.raises(ValueError, match="same length"):
        _get_confusion_info(np.zeros(3), np.zeros(2), title="OOF")


def test_pick_faces_mixes_correct_and_wrong() -> None:
    labels = np.repeat(np.arange(len(CLASS_NAMES)), 6)
    predictions = labels.copy()
    predictions[::3] = (labels[::3] + 1) % len(CLASS_NAMES)

    picked = pick_faces(labels, predictions, per_class=2, seed=0)
    correct = labels[picked] == predictions[picked]

    assert len(picked) == 2 * len(CLASS_NAMES)
    assert np.array_equal(np.bincount(labels[picked]), np.full(len(CLASS_NAMES), 2))
    assert correct.sum() == len(CLASS_NAMES)


# Model selection and every figure on tiny trained runs.


def test_select_best_oof_model(tiny: TinyExperiment) -> None:
    selection = select_model(tiny.experiment)
    scores = score_models(selection.experiment, selection.runs)

    assert selection.run.name == scores[0].name
    assert selection.score.oof_accuracy == max(score.oof_accuracy for score in scores)
    assert {score.name: score.folds for score in scores} == {"cnn": [0, 1], "mlp": [0]}


def test_select_best_fold(tiny: TinyExperiment) -> None:
    selection = select_model(tiny.experiment, model="cnn")
    accuracies = {}
    for fold in (0, 1):
        metrics = json.loads((tiny.runs_dir / "cnn" / f"fold{fold}" / "metrics.json").read_text())
        accuracies[fold] = metrics["valid_acc"]

    assert selection.fold_metrics["valid_acc"] == max(accuracies.values())
    assert select_model(tiny.experiment, model="cnn", fold=1).fold == 1


def test_unknown_model_lists_runs(tiny: TinyExperiment) -> None:
    with pytest.raises(ConfigError, match=r"--model: 'resnet' is not a run of .*; valid names: cnn, mlp$"):
        select_model(tiny.experiment, model="resnet")


def test_unfinished_fold_lists_folds(tiny: TinyExperiment) -> None:
    with pytest.raises(ConfigError, match=r"--fold: 'cnn' has no finished fold 2; finished folds: 0, 1$"):
        select_model(tiny.experiment, model="cnn", fold=2)


def test_analyze_unknown_layer(tiny: TinyExperiment, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'cnn' has no layer named 'conv9'; valid names: conv1, bn1, act1, .*layer1\.0\.conv1"):
        analyze(tiny.experiment, model="cnn", layer="conv9", reports_dir=tmp_path, **FAST)
    assert not (tmp_path / "analysis").exists()


def test_analyze_unknown_face(tiny: TinyExperiment, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--face-id: 99999 is not a training-face id"):
        analyze(tiny.experiment, model="cnn", face_id=99999, reports_dir=tmp_path, **FAST)


def test_analyze_writes_every_figure(tiny: TinyExperiment, tmp_path: Path) -> None:
    result = analyze(tiny.experiment, model="cnn", reports_dir=tmp_path, **FAST)
    out_dir = tmp_path / "analysis" / "cnn"

    assert result.out_dir == out_dir
    assert result.skipped == {}
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(FIGURE_FILES.values())
    for name in FIGURE_FILES.values():
        assert (out_dir / name).stat().st_size > 0, name
    for path in out_dir.glob("*.png"):
        assert path.read_bytes().startswith(b"\x89PNG"), path.name
    summary = json.loads((out_dir / "analysis.json").read_text())
    assert summary["model"] == "cnn"
    assert summary["filter_layer"] == "layer1.0.conv1"
    assert summary["gradcam_layer"] == "layer2"
    assert "## OOF (folds 0, 1)" in (out_dir / "confused_pairs.md").read_text()


def test_analyze_non_conv_layer(tiny: TinyExperiment, tmp_path: Path) -> None:
    analyze(tiny.experiment, model="cnn", reports_dir=tmp_path, **FAST)

    with pytest.warns(UserWarning, match="filters left out: --layer 'layer1' is not a Conv2d"):
        result = analyze(tiny.experiment, model="cnn", layer="layer1", reports_dir=tmp_path, **FAST)

    assert "activations" in result.files
    assert not (tmp_path / "analysis" / "cnn" / "filters.png").exists()


def test_analyze_dnn_skips_conv_figures(tiny: TinyExperiment, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="filters left out: mlp has no Conv2d layer"):
        result = analyze(tiny.experiment, model="mlp", reports_dir=tmp_path, **FAST)

    assert set(result.skipped) == {"filters", "activations", "gradcam"}
    assert (tmp_path / "analysis" / "mlp" / "saliency.png").stat().st_size > 0


def test_cli_analyze_unknown_model(tiny: TinyExperiment, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "fer_kaggle", "analyze", "--experiment", str(tiny.experiment), "--model", "nope", "--reports", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 2
    assert completed.stderr.startswith("fer-kaggle: error: --model: 'nope' is not a run of")
    assert completed.stderr.strip().endswith("valid names: cnn, mlp")
