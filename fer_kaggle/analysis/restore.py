"""Put a model back as it was after an analysis that switched modes or froze parameters."""

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["evaluation_state"]


@contextmanager
def evaluation_state(model: nn.Module, *, freeze: bool = False) -> Iterator[nn.Module]:
    """Put every module in eval mode (and optionally freeze the parameters) for the block.

    On exit, also after an exception, each module gets back its own ``training`` flag and
    each parameter its own ``requires_grad``, so a model with mixed states (a frozen
    backbone, a BatchNorm kept in eval mode) is restored exactly. Eval mode matters for
    attributions because BatchNorm in training mode mixes the faces of a batch and updates
    its running statistics.

    Args:
        model: the model to analyse.
        freeze: set ``requires_grad=False`` on every parameter, for analyses that need
            gradients with respect to the input only.
    """
    modes = [(module, module.training) for module in model.modules()]
    grads = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        model.eval()
        if freeze:
            for parameter, _ in grads:
                parameter.requires_grad_(False)
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for parameter, requires_grad in grads:
            parameter.requires_grad_(requires_grad)
