"""`Sequential`: a plain stack of layers, one input and one output."""

from __future__ import annotations

from maasfin import _core
from maasfin.layers.base import InputLayer, KerasTensor, Layer, unique_name
from maasfin.models.model import Model, mask_node
from maasfin.seeds import draw_seed


class Sequential(Model):
    """A linear stack of layers, as keras.Sequential."""

    _functional = False

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True):
        super().__init__(name=name or unique_name("sequential"))
        self._layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if isinstance(layer, KerasTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a maasfin layer, got {type(layer).__name__}")
        if self.built:
            raise ValueError(f"Sequential '{self.name}': cannot add layer '{layer.name}' after the model is built")
        if isinstance(layer, InputLayer):
            if layer.dtype == "string":
                raise ValueError(
                    f"Sequential '{self.name}': string inputs need a functional model, e.g. "
                    "x = Input(shape=(1,), dtype='string'); y = StringLookup(...)(x); ..."
                )
            if self._layers or self._input_layer is not None:
                raise ValueError(f"Sequential '{self.name}': an Input must come first")
            self._input_layer = layer
            return
        if any(layer is l for l in self._layers):
            raise ValueError(f"Sequential '{self.name}': layer '{layer.name}' is already in the model")
        if layer._num_outputs() != 1:
            raise ValueError(
                f"Sequential '{self.name}': all layers in a Sequential model should have a single "
                f"output tensor; layer '{layer.name}' has {layer._num_outputs()} (return_state=True). "
                "Use the functional API"
            )
        self._layers.append(layer)

    def pop(self) -> Layer:
        if self.built:
            raise ValueError(f"Sequential '{self.name}': cannot pop a layer after the model is built")
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        return self._layers.pop()

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def _declared_input_shape(self):
        if self._input_layer is not None:
            return self._input_layer.shape
        if self._layers and self._layers[0]._input_shape_arg is not None:
            return self._layers[0]._input_shape_arg
        return None

    def _input_shapes_for_display(self):
        shape = self._input_shapes[0] if self.built else self._declared_input_shape()
        if shape is None:
            raise ValueError(f"Sequential '{self.name}' has no input shape yet")
        return [shape]

    @property
    def inputs(self):
        return [self._input_layer.output] if self._input_layer is not None else []

    def build(self, input_shape=None) -> None:
        if input_shape is not None:
            shape = tuple(input_shape)
            if len(shape) < 2 or shape[0] is not None and not isinstance(shape[0], int):
                raise ValueError(
                    "Sequential.build: input_shape must include the batch dimension, e.g. (None, 10), "
                    f"got {input_shape!r}"
                )
            self._ensure_built([shape[1:]])
        else:
            self._ensure_built()

    def _build_graph(self, data_shapes=None) -> None:
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}' has no layers; add some with model.add(...)")
        shape = self._declared_input_shape()
        if shape is None:
            if not data_shapes:
                raise ValueError(
                    f"Sequential '{self.name}' has no input shape: pass input_shape=(n,) to the "
                    "first layer, start with maasfin.Input(shape=(n,)), or call fit/predict first"
                )
            shape = tuple(int(d) for d in data_shapes[0])
        g = _core.Graph()
        node = g.add_input(list(shape), self._input_layer.name if self._input_layer else "input_layer")
        mask, masks = None, {}
        for layer in self._layers:
            out_mask = layer._mask_flow([mask], [node])
            inputs = [node]
            if layer._mask_in is not None:
                inputs.append(mask_node(g, masks, layer._mask_in, lambda n: n))
            node = layer._attach_all(g, inputs)[0]
            mask = out_mask
        g.build(node, draw_seed(), -1 if self._max_params is None else self._max_params)
        self._output_mask = mask
        self._input_shapes = [tuple(shape)]
        for layer in self._layers:
            layer._on_built()
        self._graph = g
