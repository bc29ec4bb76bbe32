"""Weight regularizers with Keras's names: the penalty l1 * sum|w| + l2 * sum w^2 is added to the
loss (and reported in it, as Keras does); its gradient is added in C++ at every step."""

from __future__ import annotations

from maasfin import registry

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get"]


def _factor(cls: str, arg: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise ValueError(f"{cls}: {arg} must be a non-negative number, got {v!r}")
    return float(v)


class Regularizer:
    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(type(self).__name__, "l1", l1)
        self.l2 = _factor(type(self).__name__, "l2", l2)

    def __call__(self, x) -> float:
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        return float(self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum())

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        super().__init__(l1, l2)


class L1(Regularizer):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"unknown regularizer {identifier!r}; valid: {', '.join(sorted(_BY_NAME))} or a "
        "maasfin.regularizers.Regularizer"
    )


registry.register_exports("regularizer", globals(), __all__, Regularizer)
