"""Errors raised by edgeq. Every problem with a model file is a ModelError naming what is wrong."""


class ModelError(ValueError):
    """The model cannot be loaded or run: the message names the tensor, op or field at fault."""


class InvokeError(RuntimeError):
    """A kernel refused its inputs while running (for example a GATHER index out of range)."""
