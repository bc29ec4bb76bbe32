"""Models: the functional `Model(inputs, outputs)` and `Sequential`, and loading them from files."""

from maasfin import registry
from maasfin.models.model import Model
from maasfin.models.sequential import Sequential
from maasfin.saving.maas import from_bytes, load_model
from maasfin.signature import Signature, TensorSpec

__all__ = ["Model", "Sequential", "load_model", "from_bytes", "Signature", "TensorSpec"]

registry.register("model", Model)
registry.register("model", Sequential)
