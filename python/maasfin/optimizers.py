"""Optimizers with Keras's names, arguments and update rules; steps run in C++ over the
model's whole parameter arena."""
from __future__ import annotations

import numpy as np

from maasfin import _core

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get"]


def _check_rate(cls: str, lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
        raise ValueError(f"{cls}: learning_rate must be a non-negative number, got {lr!r}")
    return float(lr)


class Optimizer:
    def __init__(self, learning_rate, name=None, **kwargs):
        unsupported = {k: v for k, v in kwargs.items() if v not in (None, False, 0, 0.0)}
        if unsupported:
            raise ValueError(f"{type(self).__name__}: unsupported arguments {sorted(unsupported)}")
        self._learning_rate = _check_rate(type(self).__name__, learning_rate)
        self.name = name or type(self).__name__.lower()
        self._core = None
        self._pending_state = None

    def _make_core(self):
        raise NotImplementedError

    def _bind(self):
        """Creates the core optimizer and returns it; its state is empty, or the one given to
        `set_state` before training started."""
        self._core = self._make_core()
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self._apply_state(state)
        return self._core

    def get_state(self) -> dict:
        """The step count and per-parameter slots (NumPy float32 arrays), for exact resumption."""
        if self._core is None:
            return dict(self._pending_state) if self._pending_state is not None else {"iterations": 0, "slots": {}}
        return {"iterations": int(self._core.iterations),
                "slots": {k: self._core.get_slot(k) for k in self._core.slot_names()}}

    def set_state(self, state: dict, n_params: int) -> None:
        """Restores a state from `get_state` for a model with `n_params` arena entries."""
        if not isinstance(state, dict) or "iterations" not in state or "slots" not in state:
            raise ValueError("optimizer state must be a dict with 'iterations' and 'slots'")
        iterations = state["iterations"]
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError(f"optimizer state: iterations must be a non-negative integer, got {iterations!r}")
        state = {"iterations": int(iterations), "n": int(n_params),
                 "slots": {str(k): np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for k, v in state["slots"].items()}}
        if self._core is None:
            self._pending_state = state
        else:
            self._apply_state(state)

    def _apply_state(self, state: dict) -> None:
        if state["slots"] or state["iterations"]:
            if state["slots"]:
                self._core.set_slots(state["n"], state["slots"])
            self._core.iterations = state["iterations"]

    @property
    def learning_rate(self) -> float:
        return self._core.learning_rate if self._core is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self._learning_rate = _check_rate(type(self).__name__, float(value))
        if self._core is not None:
            self._core.learning_rate = self._learning_rate

    @property
    def iterations(self) -> int:
        return self._core.iterations if self._core is not None else 0

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _make_core(self):
        return _core.SGD(self._learning_rate, self.momentum, self.nesterov)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 name="adam", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        for arg, v in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= v < 1:
                raise ValueError(f"Adam: {arg} must be in [0, 1), got {v!r}")
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = float(beta_1), float(beta_2), float(epsilon), bool(amsgrad)

    def _make_core(self):
        return _core.Adam(self._learning_rate, self.beta_1, self.beta_2, self.epsilon, self.amsgrad)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        if not 0 <= rho < 1:
            raise ValueError(f"RMSprop: rho must be in [0, 1), got {rho!r}")
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), bool(centered)

    def _make_core(self):
        return _core.RMSprop(self._learning_rate, self.rho, self.momentum, self.epsilon, self.centered)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier) -> Optimizer:
    """Resolves an optimizer name (case-insensitive), class or instance, as keras.optimizers.get."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; valid names: {', '.join(sorted(_BY_NAME))}")
        return cls()
    raise TypeError(f"optimizer must be a name or a maasfin.optimizers.Optimizer, got {identifier!r}")
