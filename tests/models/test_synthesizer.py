"""The task of a GroupDNet network: its compiled generate function on every backend (run this
file with KERAS_BACKEND=jax and KERAS_BACKEND=torch too) and the delegation of the model's
NumPy API to it."""

import keras
import numpy as np
import pytest

from smis_layers.models import GroupDNet, MulNet
from smis_layers.models.groupdnet.synthesizer import Synthesizer
from tests.helpers import BACKEND, to_numpy
from tests.models.test_groupdnet import SIZE, _images, _labels, tiny


def _eager_decode(model, z, labels):
    return to_numpy(model.decode(z, model.segmap(labels), training=False))


@pytest.mark.parametrize("model_class", [GroupDNet, MulNet])
def test_compiled_generate_matches_the_eager_call(model_class):
    model = tiny() if model_class is GroupDNet else MulNet(4, SIZE, encoder_channels=8)
    labels = _labels()
    z = model.sample_z(2, seed=1, prior="standard")
    np.testing.assert_allclose(
        model.generate(labels, z=z), _eager_decode(model, z, labels), atol=2e-5
    )
    images = _images()
    mu, logvar = model.encode(images, labels)
    eager_mu, eager_logvar = model.encode_segmap(images, model.segmap(labels), training=False)
    np.testing.assert_allclose(mu, to_numpy(eager_mu), atol=2e-5)
    np.testing.assert_allclose(logvar, to_numpy(eager_logvar), atol=2e-5)


def test_generate_function_is_compiled_for_the_backend():
    model = tiny()
    task = model.synthesizer
    generate = task.make_generate_function()
    assert task.make_generate_function() is generate is task.inference_function("decode")
    z = model.sample_z(1, seed=0)
    out = generate(z, model.segmap(_labels(1)))
    if BACKEND == "tensorflow":
        assert hasattr(generate, "get_concrete_function")  # a tf.function
    elif BACKEND == "torch":
        assert not out.requires_grad  # run under torch.no_grad()
    elif BACKEND == "jax":
        import jax

        assert isinstance(out, jax.Array)
        assert hasattr(generate.jitted, "lower")  # a jax.jit of the stateless call


def test_weights_loaded_after_compiling_are_used():
    model, other = tiny(), tiny()
    labels = _labels(1)
    z = model.sample_z(1, seed=2, prior="standard")
    model.generate(labels, z=z)  # compiles
    model.set_weights(other.get_weights())
    np.testing.assert_allclose(model.generate(labels, z=z), other.generate(labels, z=z), atol=2e-5)


def test_model_methods_delegate_to_its_synthesizer():
    model = tiny()
    task = model.synthesizer
    assert isinstance(task, Synthesizer) and task.model is model and model.synthesizer is task
    labels = _labels(1)
    z = task.sample_z(1, seed=4)
    np.testing.assert_array_equal(model.sample_z(1, seed=4), z)
    np.testing.assert_array_equal(model.generate(labels, z=z), task.generate(labels, z=z))
    assert model.class_channels(1) == task.class_channels(1) == (8, 16)
    np.testing.assert_array_equal(model.class_code(z, 1), z[..., 8:16])
    np.testing.assert_array_equal(model.with_class_code(z, 1, 0.0)[..., 8:16], 0.0)
    assert len(model.weights) == len(tiny().weights)  # the task adds no variables
    assert keras.saving.serialize_keras_object(model)["config"] == tiny().get_config() | {
        "name": model.name
    }
