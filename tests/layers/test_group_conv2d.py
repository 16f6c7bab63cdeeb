import keras
import numpy as np
import pytest

from smis_layers import GroupConv2D
from smis_layers.ops import grouped_conv, resolve_lowering
from tests.helpers import (
    BACKEND,
    assert_all_weights_get_gradient,
    assert_fits,
    assert_save_load_round_trip,
    loss_gradients,
    to_numpy,
)

LOWERINGS = ["auto", "native", "split"]
# (input channels, filters, groups, kernel, strides, padding, height)
CASES = [
    (8, 8, 4, 3, 1, "same", 9),
    (12, 6, 3, 3, 2, "same", 10),
    (6, 12, 2, 1, 1, "valid", 7),
    (16, 8, 8, (3, 1), (2, 1), "valid", 11),
    (9, 9, 9, 3, 2, 1, 8),
    (4, 8, 1, 3, 2, (1, 0), 8),
]


def _reference(in_channels, filters, groups, kernel, strides, padding):
    """keras.layers.Conv2D(groups=...), with explicit zero padding in front for int padding."""
    conv_padding = padding if isinstance(padding, str) else "valid"
    conv = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding=conv_padding, groups=groups
    )
    if isinstance(padding, str):
        return conv, conv
    pad = (padding, padding) if isinstance(padding, int) else padding
    model = keras.Sequential([keras.layers.ZeroPadding2D(pad), conv])
    return model, conv


@pytest.mark.parametrize("lowering", LOWERINGS)
@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_equals_keras_conv2d_forward_and_gradients(case, lowering):
    in_channels, filters, groups, kernel, strides, padding, height = case
    if lowering == "native" and groups > 1 and not grouped_conv.native_kernel_works():
        assert resolve_lowering("auto", groups) == "split"
        pytest.skip(
            "this machine's grouped kernel fails its float32 probe (TensorFlow without "
            "oneDNN has no CPU grouped gradient); auto avoids it, as asserted"
        )
    x = np.random.default_rng(1).normal(size=(2, height, height + 1, in_channels)).astype("float32")
    layer = GroupConv2D(
        filters, kernel, groups=groups, strides=strides, padding=padding, lowering=lowering
    )
    reference, reference_conv = _reference(in_channels, filters, groups, kernel, strides, padding)
    expected = to_numpy(reference(x))
    layer.build(x.shape)
    layer.set_weights(reference_conv.get_weights())
    actual = to_numpy(layer(x))
    assert actual.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)

    (dx,), (dk, db) = loss_gradients(layer, [x])
    (dx_ref,), (dk_ref, db_ref) = loss_gradients(reference, [x])
    np.testing.assert_allclose(dx, dx_ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(dk, dk_ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(db, db_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lowering", LOWERINGS)
def test_group_isolation(lowering):
    groups, per_group = 4, 3
    layer = GroupConv2D(8, 3, groups=groups, lowering=lowering)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 8, 8, groups * per_group)).astype("float32")
    base = to_numpy(layer(x))
    for g in range(groups):
        changed = x.copy()
        changed[..., g * per_group : (g + 1) * per_group] += rng.normal(size=(2, 8, 8, per_group))
        out = to_numpy(layer(changed))
        diff = np.abs(out - base).reshape(2, 8, 8, groups, 2).max(axis=(0, 1, 2, 4))
        assert diff[g] > 1e-3, "changing group g's input must change group g's output"
        others = np.delete(diff, g)
        assert np.all(others == 0.0), f"group {g} leaked into other groups: {others}"


def test_output_shape_and_kernel_layout():
    layer = GroupConv2D(12, (3, 5), groups=3, strides=2)
    y = layer(np.zeros((1, 9, 10, 6), "float32"))
    assert tuple(y.shape) == (1, 5, 5, 12) == layer.compute_output_shape((1, 9, 10, 6))
    assert tuple(layer.kernel.shape) == (3, 5, 2, 12)
    assert tuple(layer.bias.shape) == (12,)
    assert layer.compute_output_shape((None, None, None, 6)) == (None, None, None, 12)


def test_gradients_reach_every_weight():
    layer = GroupConv2D(8, 3, groups=2)
    assert_all_weights_get_gradient(layer, [np.random.rand(2, 6, 6, 4).astype("float32")])


def test_config_round_trip():
    layer = GroupConv2D(
        8,
        (3, 1),
        groups=4,
        strides=(2, 1),
        padding=(1, 0),
        use_bias=False,
        lowering="split",
        kernel_initializer="he_normal",
        name="gc",
    )
    config = layer.get_config()
    clone = GroupConv2D.from_config(config)
    assert clone.get_config() == config
    assert clone.padding == (1, 0) and clone.kernel_size == (3, 1) and clone.lowering == "split"


def test_save_load_and_fit(tmp_path):
    inputs = keras.Input((8, 8, 4))
    outputs = GroupConv2D(4, 3, groups=2, padding=1)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.rand(4, 8, 8, 4).astype("float32")
    assert_save_load_round_trip(model, x, tmp_path)
    assert_fits(model, x, np.random.rand(4, 8, 8, 4).astype("float32"))


def test_wrapped_by_spectral_normalization():
    layer = keras.layers.SpectralNormalization(GroupConv2D(8, 3, groups=4))
    x = np.random.rand(2, 6, 6, 8).astype("float32")
    layer(x, training=True)
    kernel = to_numpy(layer.layer.kernel).reshape(-1, 8)
    sigma = np.linalg.svd(kernel, compute_uv=False)[0]
    # One power iteration per call: sigma approaches 1 after a few training calls.
    for _ in range(30):
        layer(x, training=True)
    kernel = to_numpy(layer.layer.kernel).reshape(-1, 8)
    assert abs(np.linalg.svd(kernel, compute_uv=False)[0] - 1.0) < 1e-2, sigma


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 6, "kernel_size": 3, "groups": 4}, r"`filters` \(6\) must be divisible"),
        ({"filters": 0, "kernel_size": 3}, "`filters` must be a positive integer"),
        ({"filters": 4, "kernel_size": 3, "padding": "full"}, "`padding` must be one of"),
        ({"filters": 4, "kernel_size": 3, "lowering": "xla"}, "`lowering` must be one of"),
        ({"filters": 4, "kernel_size": (3, 3, 3)}, "`kernel_size` must be an int or a pair"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroupConv2D(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"`input channels` \(6\) must be divisible by `groups`"):
        GroupConv2D(8, 3, groups=4)(np.zeros((1, 4, 4, 6), "float32"))
    with pytest.raises(ValueError, match="expected ndim=4"):
        GroupConv2D(8, 3, groups=4)(np.zeros((4, 4, 8), "float32"))


def test_auto_lowering_avoids_the_xla_cpu_trap():
    assert resolve_lowering("auto", groups=1) == "native"
    assert resolve_lowering("split", groups=4) == "split"
    native = "native" if grouped_conv.native_kernel_works("float32") else "split"
    if BACKEND == "jax":
        import jax

        expected = "split" if jax.default_backend() == "cpu" else native
        assert resolve_lowering("auto", groups=4) == expected
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            pytest.skip("GPU present: auto keeps the native cuDNN path everywhere")
        seen = {}

        def probe(tag):
            seen[tag] = resolve_lowering("auto", groups=4)
            return tf.constant(0.0)

        tf.function(lambda: probe("graph"))()
        tf.function(lambda: probe("xla"), jit_compile=True)()
        assert seen["xla"] == "split"
        assert seen["graph"] == native
    else:
        assert resolve_lowering("auto", groups=4) == native


DTYPES = ["float32", "float16", "bfloat16"]
# Relative tolerances against a float32 Conv2D fed the same rounded inputs and weights.
DTYPE_TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "bfloat16": 5e-2}


def _rounded(x, dtype):
    return to_numpy(keras.ops.cast(keras.ops.cast(x, dtype), "float32"))


def _float32_outputs(layer, input_shape):
    """`layer` followed by a cast to float32, so `loss_gradients` projects in float32."""
    return keras.Sequential(
        [keras.Input(input_shape[1:]), layer, keras.layers.Identity(dtype="float32")]
    )


def _close(actual, expected, dtype) -> bool:
    tolerance = DTYPE_TOLERANCE[dtype]
    scale = max(float(np.abs(expected).max()), 1.0)
    actual = np.asarray(actual, "float32")
    return actual.shape == expected.shape and np.allclose(
        actual, expected, rtol=tolerance, atol=tolerance * scale
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lowering", LOWERINGS)
def test_every_lowering_and_dtype_equals_conv2d(lowering, dtype):
    """Forward and gradients of every lowering in float32, float16 and bfloat16 against a
    float32 `keras.layers.Conv2D(groups=...)` with the same (rounded) weights. Where this
    machine's native kernel cannot run a dtype, the test checks that it really fails and that
    "auto" avoids it, so a machine whose kernel fails is caught here and not by a user."""
    groups = 4
    rng = np.random.default_rng(3)
    x = _rounded(rng.normal(size=(2, 7, 8, 8)).astype("float32"), dtype)
    layer = GroupConv2D(8, 3, groups=groups, lowering=lowering, dtype=dtype)
    reference = keras.layers.Conv2D(8, 3, padding="same", groups=groups)
    reference.build(x.shape)
    layer.build(x.shape)
    reference.set_weights([_rounded(w, dtype) for w in reference.get_weights()])
    layer.set_weights(reference.get_weights())
    expected = [
        to_numpy(reference(x)),
        *loss_gradients(reference, [x])[0],
        *loss_gradients(reference, [x])[1],
    ]

    model = _float32_outputs(layer, x.shape)

    def run():
        (dx,), weight_grads = loss_gradients(model, [x])
        return [to_numpy(model(x)), dx, *weight_grads]

    if lowering == "native" and not grouped_conv.native_kernel_works(dtype):
        assert resolve_lowering("auto", groups, dtype=dtype) == "split"
        try:
            actual = run()
        except Exception:  # the kernel raises on this machine, as its probe found
            return
        assert not all(_close(a, e, dtype) for a, e in zip(actual, expected, strict=True)), (
            f"the native kernel works in {dtype} here, but its probe said it does not"
        )
        return
    for a, e in zip(run(), expected, strict=True):
        assert _close(a, e, dtype), (lowering, dtype, float(np.abs(np.asarray(a) - e).max()))


def test_auto_falls_back_to_split_when_the_native_probe_fails(failing_native_kernel, caplog):
    with caplog.at_level("DEBUG", logger=grouped_conv.__name__):
        assert not grouped_conv.native_kernel_works("float16")
        assert resolve_lowering("auto", groups=4, dtype="float16") == "split"
        assert resolve_lowering("auto", groups=4, dtype="float16") == "split"
    said = [r for r in caplog.records if "failed its probe" in r.getMessage()]
    assert len(said) == 1 and "float16" in said[0].getMessage()
    x = np.random.rand(2, 6, 6, 8).astype("float32")
    model = _float32_outputs(GroupConv2D(8, 3, groups=4, dtype="float16"), x.shape)
    (dx,), grads = loss_gradients(model, [x])
    assert np.all(np.isfinite(dx)) and all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA-compiled TensorFlow function")
def test_split_lowering_inside_xla_matches_native():
    import tensorflow as tf

    layer = GroupConv2D(8, 3, groups=4)
    x = tf.constant(np.random.rand(2, 6, 6, 8).astype("float32"))
    eager = to_numpy(layer(x))
    compiled = to_numpy(tf.function(layer, jit_compile=True)(x))
    np.testing.assert_allclose(compiled, eager, atol=1e-5)
