"""Preprocessing layers for raw tabular data: Keras's, plus Imputation (which Keras lacks).

Every per-row transform runs in the C++ core: the numeric layers are graph layers whose learned
state (mean/variance, bin boundaries, fill values) is non-trainable weights in the parameter arena,
so it runs inside `predict` and is saved with the weights. Strings never enter the graph: a
StringLookup or Hashing applied to a string `Input` converts a whole column to indices in one C++
call at the data boundary (`_core.StringTable`, `_core.hash_strings`), and its part in the graph
is a CategoryEncoding of those indices.

`adapt(data)` runs once, offline, in NumPy (as Keras): data may be a NumPy array, a pandas
DataFrame/Series, a list, or an iterable of batches (which are concatenated: the statistics are
those of all rows at once). FeatureSpace (maasfin.utils.FeatureSpace) builds on these layers. WoEEncoding learns from a
binary target too: `adapt(x, y)` (optimal binning, binning.py).
"""

from maasfin.layers.preprocessing.hashing import HashedCrossing, Hashing
from maasfin.layers.preprocessing.lookup import CategoryEncoding, IntegerLookup, StringLookup
from maasfin.layers.preprocessing.numeric import Discretization, Imputation, Normalization
from maasfin.layers.preprocessing.woe import WoEEncoding

__all__ = [
    "Normalization",
    "Discretization",
    "CategoryEncoding",
    "IntegerLookup",
    "StringLookup",
    "Hashing",
    "HashedCrossing",
    "Imputation",
    "WoEEncoding",
]
