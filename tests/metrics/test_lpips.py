import keras
import numpy as np
import pytest

from smis_layers.metrics.distances import masked_lpips_distance, resize_region
from smis_layers.metrics.lpips import (
    LPIPS,
    LPIPS_SCALE,
    LPIPS_SHIFT,
    alexnet_backbone,
    convert_lpips_torch_weights,
)


def _tiny_backbone(seed=0):
    """Two taps: relu(1x1 conv) at full size, relu(1x1 conv of its 2x2 average) at half size."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((None, None, 3))
    first = keras.layers.Conv2D(4, 1, activation="relu", name="c1")(inputs)
    pooled = keras.layers.AveragePooling2D(2)(first)
    second = keras.layers.Conv2D(5, 1, activation="relu", name="c2")(pooled)
    model = keras.Model(inputs, [first, second])
    weights = {
        "c1": (rng.normal(size=(1, 1, 3, 4)), rng.normal(size=4) * 0.1),
        "c2": (rng.normal(size=(1, 1, 4, 5)), rng.normal(size=5) * 0.1),
    }
    for name, (kernel, bias) in weights.items():
        model.get_layer(name).set_weights([kernel.astype("float32"), bias.astype("float32")])
    return model, {k: (w[0][0, 0], w[1]) for k, w in weights.items()}


def _numpy_lpips(x, y, weights, heads, region=None):
    """The LPIPS formula restated in NumPy for the tiny backbone."""

    def taps(images):
        scaled = (images - np.array(LPIPS_SHIFT)) / np.array(LPIPS_SCALE)
        first = np.maximum(scaled @ weights["c1"][0] + weights["c1"][1], 0)
        b, h, w, c = first.shape
        pooled = first.reshape(b, h // 2, 2, w // 2, 2, c).mean((2, 4))
        second = np.maximum(pooled @ weights["c2"][0] + weights["c2"][1], 0)
        return [first, second]

    total = 0.0
    for fx, fy, head in zip(taps(x), taps(y), heads, strict=True):
        fx = fx / (np.sqrt((fx**2).sum(-1, keepdims=True)) + 1e-10)
        fy = fy / (np.sqrt((fy**2).sum(-1, keepdims=True)) + 1e-10)
        d = ((fx - fy) ** 2 * head).sum(-1)
        if region is None:
            total = total + d.mean((1, 2))
        else:
            b, h, w = d.shape
            r = region.reshape(b, h, region.shape[1] // h, w, region.shape[2] // w).mean((2, 4))
            total = total + (d * r).sum((1, 2)) / r.sum((1, 2))
    return total


def test_lpips_matches_the_numpy_formula():
    backbone, weights = _tiny_backbone()
    rng = np.random.default_rng(1)
    heads = [rng.uniform(0, 1, 4), rng.uniform(0, 1, 5)]
    lpips = LPIPS(backbone)
    lpips.set_head_weights(heads)
    x = rng.uniform(-1, 1, (3, 8, 8, 3)).astype("float32")
    y = rng.uniform(-1, 1, (3, 8, 8, 3)).astype("float32")
    expected = _numpy_lpips(x, y, weights, heads)
    np.testing.assert_allclose(np.asarray(lpips(x, y)), expected, rtol=1e-4)
    np.testing.assert_allclose(lpips.distance(x, y), expected, rtol=1e-4)
    assert np.allclose(np.asarray(lpips(x, x)), 0, atol=1e-6)
    region = np.zeros((3, 8, 8), "float32")
    region[:, :4, 2:6] = 1
    region[1] = 1
    np.testing.assert_allclose(
        masked_lpips_distance(lpips)(x, y, region),
        _numpy_lpips(x, y, weights, heads, region),
        rtol=1e-4,
    )


def test_heads_are_non_negative_and_checked():
    lpips = LPIPS(_tiny_backbone()[0])
    assert [h.shape for h in lpips.heads] == [(4,), (5,)]
    assert isinstance(lpips.heads[0].constraint, keras.constraints.NonNeg)
    with pytest.raises(ValueError, match="must be non-negative; head 1"):
        lpips.set_head_weights([np.ones(4), -np.ones(5)])
    with pytest.raises(ValueError, match=r"head 0 must have shape \(4,\); received \(3,\)"):
        lpips.set_head_weights([np.ones(3), np.ones(5)])
    with pytest.raises(ValueError, match=r"`backbone` must be a keras\.Model"):
        LPIPS("vgg")


def test_lpips_config_round_trip():
    lpips = LPIPS(_tiny_backbone()[0], input_scaling=False, name="tiny_lpips")
    clone = LPIPS.from_config(lpips.get_config())
    assert clone.channels == (4, 5) and clone.input_scaling is False


def test_resize_region_is_area_averaging():
    region = np.zeros((1, 4, 6))
    region[0, :2, :3] = 1
    np.testing.assert_allclose(resize_region(region, (2, 2))[0], [[1, 0], [0, 0]])
    # 6 -> 4 columns: output cells cover 1.5 input columns; cell 1 = half of column 1 (ones)
    # and column 2 (zeros)
    columns = np.zeros((1, 1, 6))
    columns[..., :2] = 1
    np.testing.assert_allclose(resize_region(columns, (1, 4))[0], [[1, 0.5 / 1.5, 0, 0]])
    assert resize_region(region, (3, 5)).sum() == pytest.approx(region.mean() * 15)


def _torch_alexnet_lpips(torch, features, heads, x, y):
    """The official LPIPS computation with a torchvision-style AlexNet, restated in torch."""
    shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
    taps = (1, 4, 7, 9, 11)

    def run(images):
        h = (torch.tensor(images).permute(0, 3, 1, 2) - shift) / scale
        outs = []
        for i, layer in enumerate(features):
            h = layer(h)
            if i in taps:
                outs.append(h)
        return outs

    total = 0
    with torch.no_grad():
        for fx, fy, w in zip(run(x), run(y), heads, strict=True):
            fx = fx / (torch.sqrt((fx**2).sum(1, keepdim=True)) + 1e-10)
            fy = fy / (torch.sqrt((fy**2).sum(1, keepdim=True)) + 1e-10)
            total = total + ((fx - fy) ** 2 * w).sum(1).mean((1, 2))
    return total.numpy()


def test_torch_alexnet_weights_convert_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )  # fmt: skip
    backbone_file, heads_file = tmp_path / "alexnet.pth", tmp_path / "alex.pth"
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(4, 4)  # ignored
    torch.save(state, backbone_file)
    heads = [torch.rand(1, c, 1, 1) for c in (64, 192, 384, 256, 256)]
    torch.save({f"lin{i}.model.1.weight": h for i, h in enumerate(heads)}, heads_file)
    npz = tmp_path / "lpips_alexnet.npz"
    convert_lpips_torch_weights(heads_file, backbone_file, npz, net="alexnet")
    lpips = LPIPS.from_weights(npz, net="alexnet")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1).astype("float32")
    expected = _torch_alexnet_lpips(torch, features, [h.view(1, -1, 1, 1) for h in heads], x, y)
    np.testing.assert_allclose(np.asarray(lpips(x, y)), expected, rtol=1e-4)


def test_converter_and_loader_errors(tmp_path):
    torch = pytest.importorskip("torch")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        LPIPS.from_weights(tmp_path / "none.npz")
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, tmp_path / "bad.pth")
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "heads.pth")
    with pytest.raises(ValueError, match=r"has 1 `features\.N\.weight` convolutions"):
        convert_lpips_torch_weights(
            tmp_path / "heads.pth", tmp_path / "bad.pth", tmp_path / "o.npz", "alexnet"
        )
    with pytest.raises(ValueError, match="`net` must be one of"):
        convert_lpips_torch_weights(tmp_path / "heads.pth", tmp_path / "bad.pth", "o", "resnet")
    lpips = LPIPS(alexnet_backbone())
    with pytest.raises(ValueError, match="missing"):
        lpips.load_arrays({"head0": np.ones(64)})


@pytest.mark.slow
def test_torch_vgg16_weights_convert_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    layers, channels = [], 3
    for width in (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
    ):
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
    features = nn.Sequential(*layers)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "v.pth")
    heads = [torch.rand(1, c, 1, 1) for c in (64, 128, 256, 512, 512)]
    torch.save({f"lin{i}.model.1.weight": h for i, h in enumerate(heads)}, tmp_path / "h.pth")
    convert_lpips_torch_weights(tmp_path / "h.pth", tmp_path / "v.pth", tmp_path / "l.npz")
    lpips = LPIPS.from_weights(tmp_path / "l.npz", net="vgg16")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1).astype("float32")
    shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)

    def taps(images):
        h, outs = (torch.tensor(images).permute(0, 3, 1, 2) - shift) / scale, []
        for i, layer in enumerate(features):
            h = layer(h)
            if i in (3, 8, 15, 22, 29):
                outs.append(h)
        return outs

    with torch.no_grad():
        expected = 0
        for fx, fy, w in zip(taps(x), taps(y), heads, strict=True):
            fx = fx / (torch.sqrt((fx**2).sum(1, keepdim=True)) + 1e-10)
            fy = fy / (torch.sqrt((fy**2).sum(1, keepdim=True)) + 1e-10)
            expected = expected + ((fx - fy) ** 2 * w).sum(1).mean((1, 2))
    np.testing.assert_allclose(np.asarray(lpips(x, y)), expected.numpy(), rtol=1e-4)
