"""Keras-named layers; the one public namespace of every layer family (`maasfin.layers.Dense`, ...).

A Python layer holds its Keras config; the math runs in the C++ core. The families live in their
own modules: base (the Layer contract), core, merge, normalization, noise, embedding, spatial,
recurrent, attention, wrappers, preprocessing/, calibration (the probability calibrator) and
monotonic (MonotonicDense and the monotone-path checks).
"""

from maasfin import registry
from maasfin.layers.attention import MultiHeadAttention
from maasfin.layers.base import Input, InputLayer, KerasTensor, Layer
from maasfin.layers.calibration import Calibration
from maasfin.layers.core import Activation, Dense, Dropout, Masking
from maasfin.layers.embedding import Embedding
from maasfin.layers.merge import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from maasfin.layers.monotonic import MonotonicDense
from maasfin.layers.noise import AlphaDropout, GaussianDropout, GaussianNoise
from maasfin.layers.normalization import BatchNormalization, LayerNormalization
from maasfin.layers.preprocessing import (
    CategoryEncoding,
    Discretization,
    HashedCrossing,
    Hashing,
    Imputation,
    IntegerLookup,
    Normalization,
    StringLookup,
    WoEEncoding,
)
from maasfin.layers.recurrent import GRU, LSTM, SimpleRNN
from maasfin.layers.spatial import (
    AveragePooling1D,
    AveragePooling2D,
    Conv1D,
    Conv2D,
    Flatten,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
    Permute,
    RepeatVector,
    Reshape,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from maasfin.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Dense",
    "Activation",
    "Dropout",
    "Masking",
    "Add",
    "Concatenate",
    "BatchNormalization",
    "LayerNormalization",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Dot",
    "add",
    "concatenate",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "dot",
    "Normalization",
    "Discretization",
    "CategoryEncoding",
    "IntegerLookup",
    "StringLookup",
    "Hashing",
    "HashedCrossing",
    "Embedding",
    "Imputation",
    "Conv1D",
    "Conv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "MultiHeadAttention",
    "TimeDistributed",
    "Bidirectional",
    "Calibration",
    "WoEEncoding",
    "MonotonicDense",
]

registry.register_exports("layer", globals(), __all__, Layer)
