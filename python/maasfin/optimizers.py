"""Optimizers with Keras 3's names, arguments and update rules; steps run in C++ over the
model's parameter arena. Every optimizer takes `learning_rate` (a float or a schedule from
`maasfin.optimizers.schedules`), `weight_decay`, and one of `clipnorm`, `clipvalue`,
`global_clipnorm`."""

from __future__ import annotations

import numpy as np

from maasfin import (
    _core,
    registry,
    schedules,  # noqa: F401  (maasfin.optimizers.schedules, as in Keras)
)
from maasfin.schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Nadam", "get", "schedules"]


def _check_rate(cls: str, lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) or not lr >= 0:
        raise ValueError(f"{cls}: learning_rate must be a non-negative number or a LearningRateSchedule, got {lr!r}")
    return float(lr)


def _option(cls: str, arg: str, v) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v > 0:
        raise ValueError(f"{cls}: {arg} must be a positive number or None, got {v!r}")
    return float(v)


def _unit(cls: str, arg: str, v, closed=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v <= 1 if closed else 0 <= v < 1):
        raise ValueError(f"{cls}: {arg} must be in [0, 1{']' if closed else ')'}, got {v!r}")
    return float(v)


class Optimizer:
    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        cls = type(self).__name__
        if kwargs:
            raise TypeError(f"{cls}: unexpected arguments {sorted(kwargs)}")
        if use_ema or loss_scale_factor is not None or gradient_accumulation_steps is not None:
            raise ValueError(f"{cls}: use_ema, loss_scale_factor and gradient_accumulation_steps are not supported")
        if isinstance(learning_rate, LearningRateSchedule):
            self._schedule, self._learning_rate = learning_rate, None
        else:
            self._schedule, self._learning_rate = None, _check_rate(cls, learning_rate)
        self.weight_decay = None if not weight_decay else _option(cls, "weight_decay", weight_decay)
        self.clipnorm, self.clipvalue = clipnorm, clipvalue
        self.global_clipnorm = global_clipnorm
        opts = dict(
            weight_decay=self.weight_decay or 0.0,
            clipnorm=_option(cls, "clipnorm", clipnorm),
            clipvalue=_option(cls, "clipvalue", clipvalue),
            global_clipnorm=_option(cls, "global_clipnorm", global_clipnorm),
        )
        if sum(1 for k in ("clipnorm", "clipvalue", "global_clipnorm") if opts[k]) > 1:
            raise ValueError(f"{cls}: only one of clipnorm, clipvalue and global_clipnorm can be set")
        self._options = _core.OptimizerOptions(**opts)
        self.name = name or cls.lower()
        self._core = None
        self._pending_state = None

    def _make_core(self):
        raise NotImplementedError

    def _configure(self, core):
        core.set_options(self._options)
        if self._schedule is not None:
            core.set_schedule(self._schedule._spec)
        return core

    def _bind(self):
        """Creates the core optimizer and returns it; its state is empty, or the one given to
        `set_state` before training started."""
        self._core = self._configure(self._make_core())
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self._apply_state(state)
        return self._core

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule is evaluated at `iterations`)."""
        if self._schedule is not None:
            return self._schedule(self.iterations)
        return self._core.learning_rate if self._core is not None else self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if self._schedule is not None:
            raise TypeError(
                f"{type(self).__name__}: learning_rate is a {type(self._schedule).__name__} schedule "
                "and cannot be set to a number; give the optimizer a float learning_rate instead"
            )
        self._learning_rate = _check_rate(type(self).__name__, float(value))
        if self._core is not None:
            self._core.learning_rate = self._learning_rate

    @property
    def iterations(self) -> int:
        if self._core is not None:
            return int(self._core.iterations)
        return int(self._pending_state["iterations"]) if self._pending_state is not None else 0

    def get_state(self) -> dict:
        """The step count and per-parameter slots (NumPy float32 arrays), for exact resumption."""
        if self._core is None:
            if self._pending_state is not None:
                return {"iterations": self._pending_state["iterations"], "slots": dict(self._pending_state["slots"])}
            return {"iterations": 0, "slots": {}}
        return {
            "iterations": int(self._core.iterations),
            "slots": {k: self._core.get_slot(k) for k in self._core.slot_names()},
        }

    def set_state(self, state: dict, n_params: int) -> None:
        """Restores a state from `get_state` for a model with `n_params` arena entries."""
        if not isinstance(state, dict) or "iterations" not in state or "slots" not in state:
            raise ValueError("optimizer state must be a dict with 'iterations' and 'slots'")
        iterations = state["iterations"]
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
            raise ValueError(f"optimizer state: iterations must be a non-negative integer, got {iterations!r}")
        state = {
            "iterations": int(iterations),
            "n": int(n_params),
            "slots": {str(k): np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for k, v in state["slots"].items()},
        }
        if self._core is None:
            self._pending_state = state
        else:
            self._apply_state(state)

    def _apply_state(self, state: dict) -> None:
        if state["slots"]:
            self._core.set_slots(state["n"], state["slots"])
        self._core.iterations = state["iterations"]

    def get_config(self) -> dict:
        lr = (
            self._learning_rate
            if self._schedule is None
            else {"class_name": type(self._schedule).__name__, "config": self._schedule.get_config()}
        )
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            sched = getattr(schedules, str(lr.get("class_name")), None)
            if not (isinstance(sched, type) and issubclass(sched, LearningRateSchedule)):
                raise ValueError(f"unknown learning-rate schedule {lr.get('class_name')!r}")
            config["learning_rate"] = sched.from_config(lr.get("config", {}))
        return cls(**config)


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        self.momentum, self.nesterov = _unit("SGD", "momentum", momentum, closed=True), bool(nesterov)

    def _make_core(self):
        return _core.SGD(self._learning_rate or 0.0, self.momentum, self.nesterov)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    def __init__(
        self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="adam", **kwargs
    ):
        super().__init__(learning_rate, name=name, **kwargs)
        c = type(self).__name__
        self.beta_1, self.beta_2 = _unit(c, "beta_1", beta_1), _unit(c, "beta_2", beta_2)
        self.epsilon, self.amsgrad = float(epsilon), bool(amsgrad)

    def _make_core(self):
        return _core.Adam(self._learning_rate or 0.0, self.beta_1, self.beta_2, self.epsilon, self.amsgrad)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004, as Keras)."""

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        name="adamw",
        **kwargs,
    ):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number; use Adam for no weight decay")
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, name=name, weight_decay=weight_decay, **kwargs
        )


class RMSprop(Optimizer):
    def __init__(
        self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name="rmsprop", **kwargs
    ):
        super().__init__(learning_rate, name=name, **kwargs)
        self.rho, self.momentum = _unit("RMSprop", "rho", rho), _unit("RMSprop", "momentum", momentum, closed=True)
        self.epsilon, self.centered = float(epsilon), bool(centered)

    def _make_core(self):
        return _core.RMSprop(self._learning_rate or 0.0, self.rho, self.momentum, self.epsilon, self.centered)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name="adagrad", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        if not isinstance(initial_accumulator_value, (int, float)) or initial_accumulator_value < 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0, got {initial_accumulator_value!r}")
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def _make_core(self):
        return _core.Adagrad(self._learning_rate or 0.0, self.initial_accumulator_value, self.epsilon)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adamax(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="adamax", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        c = type(self).__name__
        self.beta_1, self.beta_2, self.epsilon = _unit(c, "beta_1", beta_1), _unit(c, "beta_2", beta_2), float(epsilon)

    def _make_core(self):
        return _core.Adamax(self._learning_rate or 0.0, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Nadam(Adamax):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="nadam", **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, name=name, **kwargs)

    def _make_core(self):
        return _core.Nadam(self._learning_rate or 0.0, self.beta_1, self.beta_2, self.epsilon)


_CLASSES = [SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, Nadam]
_BY_NAME = {c.__name__.lower(): c for c in _CLASSES}


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


registry.register_exports("optimizer", globals(), __all__, Optimizer)
