"""The JAX pieces of `SMISTrainer`'s stateless train step (imported on the JAX backend only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import keras


@jax.custom_vjp
def _read_after_assign(leaf, value):
    return value


def _read_after_assign_fwd(leaf, value):
    return value, None


def _read_after_assign_bwd(_, gradient):
    return gradient, jax.numpy.zeros_like(gradient)


_read_after_assign.defvjp(_read_after_assign_fwd, _read_after_assign_bwd)


class InPlaceScope(keras.StatelessScope):
    """A `keras.StatelessScope` in which assigning a variable that is being differentiated acts
    as an in-place update does under TensorFlow's `GradientTape` or PyTorch's autograd: later
    reads see the assigned value, and their gradient flows to the variable itself, not through
    the computation of the assigned value.

    `keras.layers.SpectralNormalization` assigns `W / sigma` to its (trainable) kernel in every
    training call. In a plain stateless scope the conv would read `W / sigma(W)` as a function of
    `W`, so the gradient would also flow through `sigma`: PyTorch's `spectral_norm` semantics, not
    what the TensorFlow and PyTorch backends of this library compute.

    Args:
        state_mapping: `(variable, value)` pairs, as for `keras.StatelessScope`.
        leaves: `{id(variable): value}` of the variables being differentiated.
    """

    def __init__(self, state_mapping, leaves: dict[int, object]):
        super().__init__(state_mapping)
        self._leaves = leaves

    def add_update(self, update):
        variable, value = update
        leaf = self._leaves.get(id(variable))
        if leaf is not None:
            value = _read_after_assign(leaf, keras.ops.cast(value, leaf.dtype))
        super().add_update((variable, value))


def current_values(scope: keras.StatelessScope, variables: Sequence) -> list:
    """The values `scope` holds for `variables` (all of them mapped), without gradient."""
    return [jax.lax.stop_gradient(scope.get_current_value(v)) for v in variables]


def loss_gradients(
    optimizer: keras.optimizers.Optimizer,
    optimizer_values: list,
    variables: Sequence,
    values: list,
    trained: Sequence,
    losses: Callable[[], dict],
    total: str,
) -> tuple[list, dict, list]:
    """Gradients of the loss `losses()[total]` (scaled by `optimizer` when it is a
    `LossScaleOptimizer`) with respect to the variables `trained`.

    Args:
        optimizer: the optimizer of `trained`, with `optimizer_values` the values of its
            variables (its loss scale).
        variables: every variable the losses may read or assign, with `values` their values.
        trained: the variables to differentiate (a subset of `variables`).
        losses: computes the loss terms (a dict of float32 scalars) from the variables.
        total: the name of the term to minimize.

    Returns:
        `(gradients, terms, values)`: one gradient per variable of `trained`, the terms, and
        the values of `variables` after the assignments `losses` made.
    """
    index = {id(v): i for i, v in enumerate(variables)}
    positions = [index[id(v)] for v in trained]

    def scaled_loss(trained_values, values):
        values = list(values)
        for position, value in zip(positions, trained_values, strict=True):
            values[position] = value
        leaves = {id(v): value for v, value in zip(trained, trained_values, strict=True)}
        with InPlaceScope(zip(variables, values, strict=True), leaves) as scope:
            terms = losses()
        with keras.StatelessScope(zip(optimizer.variables, optimizer_values, strict=True)):
            loss = terms[total]
            if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                loss = optimizer.scale_loss(loss)
        return loss, (terms, current_values(scope, variables))

    start = [values[p] for p in positions]
    gradients, (terms, values) = jax.grad(scaled_loss, has_aux=True)(start, values)
    return gradients, terms, values


def optimizer_step(
    optimizer: keras.optimizers.Optimizer,
    optimizer_values: list,
    variables: Sequence,
    values: list,
    trained: Sequence,
    losses: Callable[[], dict],
    total: str,
) -> tuple[dict, list, list]:
    """One stateless optimizer step of the variables `trained` (arguments of
    `loss_gradients`; `optimizer` is built on `trained`).

    Returns:
        `(terms, values, optimizer_values)`: the loss terms and the new values of `variables`
        (assignments made by `losses` included) and of the optimizer's variables.
    """
    gradients, terms, values = loss_gradients(
        optimizer, optimizer_values, variables, values, trained, losses, total
    )
    positions = {id(v): i for i, v in enumerate(variables)}
    positions = [positions[id(v)] for v in trained]
    # The update applies to the values after the step's assignments (a spectrally normalized
    # kernel), as an in-place optimizer update does.
    updated, optimizer_values = optimizer.stateless_apply(
        optimizer_values, gradients, [values[p] for p in positions]
    )
    values = list(values)
    for position, value in zip(positions, updated, strict=True):
        values[position] = value
    return terms, values, list(optimizer_values)
