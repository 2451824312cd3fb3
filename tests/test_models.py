"""Tests for fer_kaggle.models: registry, shapes, gradients, training, formats, seeding and errors."""

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from fer_kaggle.constants import IMAGE_SIZE, NUM_CLASSES
from fer_kaggle.errors import ConfigError
from fer_kaggle.models import count_parameters, create_model, dnn_parameter_count, list_models

OWN_MODELS = list_models()

#: Trainable parameters of the reference residual CNN whose size resnet_seed matches.
REFERENCE_SEED_PARAMETERS = 913_095


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Run this module's tiny batches on one thread, restoring the count afterwards.

    Another busy process on the 2 cores made these tests about 7x slower with 2 threads,
    because OpenMP threads wait for each other. One thread is as fast on an idle machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(size: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``size`` random grayscale 48x48 images and labels covering several classes."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(size, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    labels = torch.arange(size) % NUM_CLASSES
    return images, labels


def seeded_model(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kwargs)


def seeded_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return the training-mode loss with the same dropout and drop-path masks on every call."""
    torch.manual_seed(123)
    return F.cross_entropy(model(images), labels)


def test_list_models_sorted_and_registered():
    assert OWN_MODELS == sorted(OWN_MODELS)
    assert {"dnn", "preact_resnet", "resnet_seed", "timm_resnet18_48", "timm_resnet18_48_w32"} <= set(OWN_MODELS)
    for name in OWN_MODELS:
        assert timm.is_model(name), name


def test_timm_create_model_uses_default_cfg():
    model = timm.create_model("resnet_seed", num_classes=7, in_chans=1)

    assert model.pretrained_cfg["input_size"] == (1, IMAGE_SIZE, IMAGE_SIZE)
    assert model.pretrained_cfg["num_classes"] == NUM_CLASSES
    assert len(model.pretrained_cfg["mean"]) == 1
    assert model(batch()[0]).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_forward_shape(name):
    model = seeded_model(name).eval()

    assert model(batch()[0]).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_backward_finite_grads(name):
    model = seeded_model(name).train()
    images, labels = batch()

    F.cross_entropy(model(images), labels).backward()

    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name


@pytest.mark.parametrize("name", OWN_MODELS)
def test_training_lowers_loss(name):
    model = seeded_model(name).train()
    images, labels = batch(size=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    with torch.no_grad():
        loss_before = seeded_loss(model, images, labels).item()
    for _ in range(3):
        optimizer.zero_grad()
        seeded_loss(model, images, labels).backward()
        optimizer.step()
    with torch.no_grad():
        loss_after = seeded_loss(model, images, labels).item()

    assert loss_after < loss_before


@pytest.mark.parametrize("name", OWN_MODELS)
def test_channels_last_matches_contiguous(name):
    model = seeded_model(name).eval()
    images = batch()[0]
    with torch.no_grad():
        expected = model(images)

        model = model.to(memory_format=torch.channels_last)
        output = model(images.contiguous(memory_format=torch.channels_last))

    torch.testing.assert_close(output, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_bf16_autocast_close_to_fp32(name):
    model = seeded_model(name).eval()
    images = batch()[0]
    with torch.no_grad():
        expected = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = model(images.contiguous(memory_format=torch.channels_last))

    assert output.shape == (2, NUM_CLASSES)
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output.float(), expected, atol=0.1, rtol=0.1)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_same_seed_same_model(name):
    first, second, other = seeded_model(name, seed=7), seeded_model(name, seed=7), seeded_model(name, seed=8)
    images = batch()[0]

    for (key, value), other_value in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(value, other_value), key
    assert not torch.equal(first.get_classifier().weight, other.get_classifier().weight)
    with torch.no_grad():
        assert torch.equal(first.eval()(images), second.eval()(images))


def test_resnet_seed_parameter_count():
    count = count_parameters(create_model("resnet_seed"))

    assert abs(count - REFERENCE_SEED_PARAMETERS) / REFERENCE_SEED_PARAMETERS < 0.05


@pytest.mark.parametrize("match", ["resnet_seed", "preact_resnet"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_dnn_matches_parameter_count(match, depth):
    target = count_parameters(create_model(match))
    count = count_parameters(create_model("dnn", match=match, depth=depth))

    assert abs(count - target) / target < 0.02


def test_dnn_default_matches_resnet_seed():
    target = count_parameters(create_model("resnet_seed"))
    count = count_parameters(create_model("dnn"))

    assert abs(count - target) / target < 0.02


@pytest.mark.parametrize(("width", "depth", "in_chans"), [(10, 1, 1), (37, 3, 1), (16, 2, 3)])
def test_dnn_parameter_formula(width, depth, in_chans):
    model = create_model("dnn", width=width, depth=depth, in_chans=in_chans)

    assert model.num_features == width
    assert count_parameters(model) == dnn_parameter_count(in_chans * IMAGE_SIZE**2, width, depth, NUM_CLASSES)


def test_dnn_width_and_match_rejected():
    with pytest.raises(ConfigError, match="width .* match"):
        create_model("dnn", width=64, match="resnet_seed")


def test_dnn_unknown_match_rejected():
    with pytest.raises(ConfigError, match="'dnn'.*'no_such_net'"):
        create_model("dnn", match="no_such_net")


def test_unknown_model_message():
    with pytest.raises(ConfigError) as raised:
        create_model("no_such_net")

    expected = f"unknown model 'no_such_net'; choose one of: {', '.join(OWN_MODELS)}, or any timm model name"
    assert str(raised.value) == expected


@pytest.mark.parametrize("name", [*OWN_MODELS, "resnet10t"])
def test_unknown_kwarg_names_key_and_model(name):
    with pytest.raises(ConfigError) as raised:
        create_model(name, widht=32)

    assert "'widht'" in str(raised.value)
    assert f"'{name}'" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "kwargs", "parameter"),
    [
        ("resnet_seed", {"width": 0}, "width"),
        ("resnet_seed", {"width": 25}, "width"),
        ("resnet_seed", {"depths": []}, "depths"),
        ("resnet_seed", {"depths": [1]}, "depths"),
        ("resnet_seed", {"depths": [1, 1, 1, 1, 1]}, "depths"),
        ("timm_resnet18_48", {"drop_path_rate": 1.5}, "drop_path_rate"),
        ("resnet_seed", {"stem_stride": 4}, "stem_stride"),
        ("preact_resnet", {"width": 20}, "width"),
        ("preact_resnet", {"depths": "2,2"}, "depths"),
        ("preact_resnet", {"drop_rate": -0.1}, "drop_rate"),
        ("dnn", {"depth": 0}, "depth"),
        ("dnn", {"width": True}, "width"),
    ],
)
def test_invalid_value_names_parameter(name, kwargs, parameter):
    with pytest.raises(ConfigError, match=f"'{name}': invalid {parameter}"):
        create_model(name, **kwargs)


def test_pretrained_rejected():
    with pytest.raises(ConfigError, match="pretrained"):
        create_model("resnet10t", pretrained=True)


def test_yaml_kwargs_shape_model():
    model = create_model("resnet_seed", width=16, depths=[1, 1, 1, 2], drop_rate=0.2, drop_path_rate=0.1)
    drop_paths = [module for module in model.modules() if type(module).__name__ == "DropPath"]

    assert model.conv1.out_channels == 16
    assert model.fc.in_features == 128
    assert len(model.layer4) == 2
    assert model.drop_rate == 0.2
    # timm ramps the rate from 0 at the first block, which therefore gets no DropPath.
    assert len(drop_paths) == 4
    assert model(batch()[0]).shape == (2, NUM_CLASSES)


def test_resnet_seed_two_stages():
    model = create_model("resnet_seed", width=8, depths=[1, 1]).eval()

    assert isinstance(model.layer3, nn.Identity)
    assert isinstance(model.layer4, nn.Identity)
    assert model.forward_features(batch()[0]).shape == (2, 16, IMAGE_SIZE // 2, IMAGE_SIZE // 2)
    assert model(batch()[0]).shape == (2, NUM_CLASSES)


def test_preact_resnet_three_stages():
    model = create_model("preact_resnet", width=16, depths=[1, 1, 1]).eval()

    assert model.forward_features(batch()[0]).shape == (2, 64, IMAGE_SIZE // 4, IMAGE_SIZE // 4)
    assert model(batch()[0]).shape == (2, NUM_CLASSES)


def test_preact_resnet_has_drop_path():
    model = create_model("preact_resnet", drop_path_rate=0.2)
    rates = [module.drop_prob for module in model.modules() if type(module).__name__ == "DropPath"]

    assert rates
    assert max(rates) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resnet_seed", {}),
        ("resnet_seed", {"stem_stride": 2}),
        ("resnet_fast", {}),
        ("preact_resnet", {}),
        ("timm_resnet18_48_w32", {}),
    ],
)
def test_feature_info_matches_maps(name, kwargs):
    model = create_model(name, features_only=True, **kwargs).eval()
    with torch.no_grad():
        feature_maps = model(batch()[0])

    for info, feature_map in zip(model.feature_info.get_dicts(), feature_maps):
        assert feature_map.shape[1] == info["num_chs"], info["module"]
        assert feature_map.shape[-1] == IMAGE_SIZE // info["reduction"], info["module"]


def test_stem_stride_two_halves_maps():
    stride_one = create_model("resnet_seed").eval()
    stride_two = create_model("resnet_seed", stem_stride=2).eval()

    assert stride_two.conv1.stride == (2, 2)
    assert count_parameters(stride_two) == count_parameters(stride_one)
    assert stride_two.forward_features(batch()[0]).shape[-1] == IMAGE_SIZE // 16
    assert stride_two(batch()[0]).shape == (2, NUM_CLASSES)


def test_resnet_fast_stride_two_stem():
    fast = create_model("resnet_fast")
    reference = create_model("timm_resnet18_48_w32")

    assert fast.conv1.stride == (2, 2)
    assert count_parameters(fast) == count_parameters(reference)
    assert fast.pretrained_cfg["pool_size"] == (IMAGE_SIZE // 16, IMAGE_SIZE // 16)


def test_generic_timm_resnet_stem_adapted():
    model = create_model("resnet10t", drop_path_rate=0.1).eval()
    first_conv = model.conv1[0]

    assert first_conv.in_channels == 1
    assert first_conv.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.forward_features(batch()[0]).shape[-1] == IMAGE_SIZE // 8
    assert model(batch()[0]).shape == (2, NUM_CLASSES)
    assert model.pretrained_cfg["input_size"] == (1, IMAGE_SIZE, IMAGE_SIZE)


def test_generic_timm_mobilenet_runs():
    model = create_model("mobilenetv3_small_050", num_classes=5).eval()
    images = batch()[0]

    assert model.conv_stem.in_channels == 1
    assert model(images).shape == (2, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(images.contiguous(memory_format=torch.channels_last)).shape == (2, 5)
