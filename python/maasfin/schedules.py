"""Learning-rate schedules with Keras 3's names (`maasfin.optimizers.schedules`). A schedule
is evaluated in C++ at every optimizer step; calling it from Python gives the same values."""

from __future__ import annotations

import numpy as np

from maasfin import _core, registry

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "CosineDecay",
    "PolynomialDecay",
]


def _number(cls: str, arg: str, v, minimum=None, strict=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        raise ValueError(f"{cls}: {arg} must be a finite number, got {v!r}")
    if minimum is not None and (v < minimum or (strict and v == minimum)):
        raise ValueError(f"{cls}: {arg} must be {'>' if strict else '>='} {minimum}, got {v!r}")
    return float(v)


class LearningRateSchedule:
    kind = ""

    def __init__(self, name=None, **spec):
        self.name = name or type(self).__name__
        self._config = spec
        self._spec = _core.ScheduleSpec(self.kind, **spec)

    def __call__(self, step) -> float:
        return float(self._spec(float(step)))

    def get_config(self) -> dict:
        return dict(self._config, name=self.name)

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class _TimeDecay(LearningRateSchedule):
    """The arguments ExponentialDecay and InverseTimeDecay share."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        c = type(self).__name__
        super().__init__(
            name or c,
            initial_learning_rate=_number(c, "initial_learning_rate", initial_learning_rate, 0),
            decay_steps=_number(c, "decay_steps", decay_steps, 0, strict=True),
            decay_rate=_number(c, "decay_rate", decay_rate, 0),
            staircase=bool(staircase),
        )


class ExponentialDecay(_TimeDecay):
    """initial_learning_rate * decay_rate ^ (step / decay_steps) (integer division if staircase)."""

    kind = "exponential_decay"


class InverseTimeDecay(_TimeDecay):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps)."""

    kind = "inverse_time_decay"


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i]."""

    kind = "piecewise_constant_decay"

    def __init__(self, boundaries, values, name="PiecewiseConstantDecay"):
        c = type(self).__name__
        super().__init__(
            name,
            boundaries=[_number(c, "boundaries", b) for b in boundaries],
            values=[_number(c, "values", v, 0) for v in values],
        )


class CosineDecay(LearningRateSchedule):
    """Cosine decay from the peak (warmup_target, reached linearly over warmup_steps, or
    initial_learning_rate) down to alpha * peak over decay_steps."""

    kind = "cosine_decay"

    def __init__(
        self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None, warmup_steps=0
    ):
        c = type(self).__name__
        super().__init__(
            name,
            initial_learning_rate=_number(c, "initial_learning_rate", initial_learning_rate, 0),
            decay_steps=_number(c, "decay_steps", decay_steps, 0, strict=True),
            alpha=_number(c, "alpha", alpha, 0),
            warmup_target=-1.0 if warmup_target is None else _number(c, "warmup_target", warmup_target, 0),
            warmup_steps=_number(c, "warmup_steps", warmup_steps, 0),
        )

    def get_config(self) -> dict:
        cfg = super().get_config()
        if cfg["warmup_target"] < 0:
            cfg["warmup_target"] = None
        return cfg


class PolynomialDecay(LearningRateSchedule):
    """(initial - end) * (1 - min(step, decay_steps) / decay_steps) ^ power + end (cycle: restart)."""

    kind = "polynomial_decay"

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        name="PolynomialDecay",
    ):
        c = type(self).__name__
        super().__init__(
            name,
            initial_learning_rate=_number(c, "initial_learning_rate", initial_learning_rate, 0),
            decay_steps=_number(c, "decay_steps", decay_steps, 0, strict=True),
            end_learning_rate=_number(c, "end_learning_rate", end_learning_rate, 0),
            power=_number(c, "power", power),
            cycle=bool(cycle),
        )


registry.register_exports("schedule", globals(), __all__, LearningRateSchedule)
