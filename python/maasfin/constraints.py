"""Weight constraints with Keras's names, applied in C++ after every optimizer step."""

from __future__ import annotations

from maasfin import registry

__all__ = ["Constraint", "NonNeg", "MaxNorm", "UnitNorm", "MinMaxNorm", "get"]


class Constraint:
    kind = ""

    def __init__(self, axis=0):
        if axis not in (0, -1):
            raise ValueError(f"{type(self).__name__}: axis must be 0 or -1, got {axis!r}")
        self.axis = axis

    def _spec(self, begin: int, shape: tuple) -> tuple:
        """(kind, begin, end, rows, cols, over_rows, min, max, rate) for the core."""
        size = 1
        for d in shape:
            size *= int(d)
        if self.axis == 0:
            rows, cols, over_rows = int(shape[0]), size // int(shape[0]), True
        else:
            rows, cols, over_rows = size // int(shape[-1]), int(shape[-1]), False
        return (
            self.kind,
            begin,
            begin + size,
            rows,
            cols,
            over_rows,
            getattr(self, "min_value", 0.0),
            getattr(self, "max_value", 0.0),
            getattr(self, "rate", 1.0),
        )

    def get_config(self) -> dict:
        return {"axis": self.axis}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


class NonNeg(Constraint):
    """w = max(w, 0)."""

    kind = "non_neg"

    def __init__(self):
        super().__init__(0)

    def get_config(self) -> dict:
        return {}


class MaxNorm(Constraint):
    """Rescales each slice along `axis` whose L2 norm exceeds max_value."""

    kind = "max_norm"

    def __init__(self, max_value=2, axis=0):
        super().__init__(axis)
        if not isinstance(max_value, (int, float)) or max_value < 0:
            raise ValueError(f"MaxNorm: max_value must be >= 0, got {max_value!r}")
        self.max_value = float(max_value)

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(Constraint):
    """w / (eps + ||w||) along `axis`."""

    kind = "unit_norm"


class MinMaxNorm(Constraint):
    kind = "min_max_norm"

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        super().__init__(axis)
        if not (0 <= min_value <= max_value):
            raise ValueError(f"MinMaxNorm: need 0 <= min_value <= max_value, got {min_value!r}, {max_value!r}")
        if not 0 <= rate <= 1:
            raise ValueError(f"MinMaxNorm: rate must be in [0, 1], got {rate!r}")
        self.min_value, self.max_value, self.rate = float(min_value), float(max_value), float(rate)

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


_BY_NAME = {
    "non_neg": NonNeg,
    "max_norm": MaxNorm,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
    "NonNeg": NonNeg,
    "MaxNorm": MaxNorm,
    "UnitNorm": UnitNorm,
    "MinMaxNorm": MinMaxNorm,
}


def get(identifier):
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"unknown constraint {identifier!r}; valid: {', '.join(sorted(_BY_NAME))}")


registry.register_exports("constraint", globals(), __all__, Constraint)
