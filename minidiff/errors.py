"""The errors minidiff raises. Each names what was wrong: the shapes, devices or dtypes involved."""


class ShapeError(ValueError):
    """Shapes that do not fit an operation (broadcasting, matmul, reshape, concatenate, ...)."""


class DeviceError(RuntimeError):
    """Arrays on different devices, or a device that is not available."""


class DTypeError(TypeError):
    """A dtype minidiff will not mix silently (e.g. float32 with float64)."""


class GraphError(RuntimeError):
    """A misuse of the autograd graph (backward through a freed graph, a non-scalar root, ...)."""


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the worst entry."""


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity where a finite number was needed (a diverged loss, weights gone bad);
    the message names the quantity, where it went bad and what to try."""


class RunLockError(RuntimeError):
    """A run folder that another run is writing to; the message names the folder, the run that
    holds it and what to do."""
