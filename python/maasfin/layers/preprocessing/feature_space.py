"""FeatureSpace: raw tabular columns -> one encoded tensor, as keras.utils.FeatureSpace.

    fs = FeatureSpace.from_dataframe(df, target="Status")   # or FeatureSpace(features={...})
    fs.adapt(df)
    x = fs.get_encoded_features()
    model = Model(fs.get_inputs(), Dense(1, activation="sigmoid")(Dense(32, activation="relu")(x)))
    model.fit(df, y)            # the DataFrame's columns feed the inputs by name
    model.predict([{"Seniority": 9, "Home": "rent", "Income": None, ...}])

Every feature gets its own named `Input` (dtype "string" for string features) and a chain of
preprocessing layers, so the whole pipeline is part of the model: it runs in C++ at predict, is
saved with the model, and accepts missing values (None/NaN) where the chain handles them.

The default recipe (what `from_dataframe` picks for a user who does not tune):
  numeric columns  -> "float_normalized": Imputation(median, with a missing-value indicator when
                      the adapt data has missing values) -> Normalization
  string/category  -> "string_categorical": StringLookup(one_hot); unseen and missing values share
                      the OOV index
  bool columns     -> "integer_categorical": IntegerLookup(one_hot)
Differences from Keras: float features are imputed (Keras's fail on NaN); string_hashed features
keep bin 0 for missing values (Hashing(mask_value="")); categorical features
may use output_mode="embedding" (StringLookup/IntegerLookup -> Embedding -> Flatten).

Crosses, as Keras: `crosses=[FeatureSpace.cross(("Home", "Marital"), crossing_dim=32)]` adds a
HashedCrossing of the crossed features' integer indices (a categorical feature's lookup index, a
float_discretized feature's bin, a hashed feature's bin) into `crossing_dim` bins, one-hot by
default (output_mode="int" gives the bin). A crossed feature's lookup then runs in "int" mode
followed by a CategoryEncoding to its own output mode (the same encoded values). The cross is part
of the model, so raw records (strings included) are crossed at predict. Its output is named
"Home_X_Marital" (the dict key with output_mode="dict") and follows the features in "concat".
Float features (float, float_normalized) cannot be crossed: discretize them first.
"""

from __future__ import annotations

import math

import numpy as np

from maasfin import data
from maasfin import layers as L
from maasfin.layers.monotonic import feature_columns

__all__ = ["FeatureSpace", "Feature", "Cross"]

_KINDS = (
    "float",
    "float_normalized",
    "float_discretized",
    "string_categorical",
    "integer_categorical",
    "string_hashed",
    "integer_hashed",
)


class Feature:
    """One feature's declaration: its kind and options (FeatureSpace.float_normalized(), ...)."""

    def __init__(self, kind: str, name: str | None = None, **options):
        if kind not in _KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; valid: {list(_KINDS)}")
        self.kind, self.name, self.options = kind, name, options

    @property
    def dtype(self) -> str:
        return "string" if self.kind in ("string_categorical", "string_hashed") else "float32"

    def __repr__(self) -> str:
        return f"Feature({self.kind!r}, {self.options})"


_CROSSABLE = ("float_discretized", "string_categorical", "integer_categorical", "string_hashed", "integer_hashed")


class Cross:
    """One feature cross's declaration (FeatureSpace.cross(...)), as Keras's."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if isinstance(feature_names, str) or not isinstance(feature_names, (list, tuple)):
            raise ValueError(
                f"FeatureSpace.cross: feature_names must be a tuple of 2 or more feature names, got {feature_names!r}"
            )
        names = tuple(str(n) for n in feature_names)
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(f"FeatureSpace.cross: feature_names must name 2 or more distinct features, got {names}")
        if isinstance(crossing_dim, bool) or not isinstance(crossing_dim, (int, np.integer)) or crossing_dim < 1:
            raise ValueError(f"FeatureSpace.cross: crossing_dim must be an integer >= 1, got {crossing_dim!r}")
        if output_mode not in ("one_hot", "int"):
            raise ValueError(f"FeatureSpace.cross: output_mode must be 'one_hot' or 'int', got {output_mode!r}")
        self.feature_names, self.crossing_dim, self.output_mode = names, int(crossing_dim), output_mode

    @property
    def name(self) -> str:
        return "_X_".join(self.feature_names)

    def get_config(self) -> dict:
        return {
            "feature_names": list(self.feature_names),
            "crossing_dim": self.crossing_dim,
            "output_mode": self.output_mode,
        }

    @classmethod
    def from_config(cls, config: dict) -> Cross:
        return cls(**config)

    def __repr__(self) -> str:
        return f"Cross({self.feature_names}, crossing_dim={self.crossing_dim}, output_mode={self.output_mode!r})"


class FeatureSpace:
    """Declares how each raw column is encoded; see the module docstring."""

    def __init__(
        self,
        features,
        output_mode: str = "concat",
        crosses=None,
        num_discretization_bins: int = 32,
        name: str | None = None,
        monotonic=None,
    ):
        if output_mode not in ("concat", "dict"):
            raise ValueError(f"FeatureSpace: output_mode must be 'concat' or 'dict', got {output_mode!r}")
        if not isinstance(features, dict) or not features:
            raise ValueError("FeatureSpace: features must be a non-empty dict {column name: kind or Feature}")
        self.features: dict[str, Feature] = {}
        for col, spec in features.items():
            feature = self._from_kind(spec, int(num_discretization_bins)) if isinstance(spec, str) else spec
            if not isinstance(feature, Feature):
                raise TypeError(
                    f"FeatureSpace: feature {col!r} must be a kind name or a FeatureSpace.<kind>(...) "
                    f"declaration, got {spec!r}"
                )
            self.features[str(col)] = feature
        self.crosses: list[Cross] = []
        for c in crosses or ():
            cross = Cross.from_config(c) if isinstance(c, dict) else c
            if not isinstance(cross, Cross):
                raise TypeError(f"FeatureSpace: crosses must be FeatureSpace.cross(...) declarations, got {c!r}")
            unknown = [n for n in cross.feature_names if n not in self.features]
            if unknown:
                raise ValueError(
                    f"FeatureSpace: cross {cross.name!r} names feature(s) {unknown} that are not "
                    f"declared (features: {list(self.features)})"
                )
            floats = [n for n in cross.feature_names if self.features[n].kind not in _CROSSABLE]
            if floats:
                raise ValueError(
                    f"FeatureSpace: cross {cross.name!r} names the {self.features[floats[0]].kind} "
                    f"feature {floats[0]!r}; only categorical, hashed and float_discretized features "
                    "can be crossed"
                )
            if cross.name in self.features or any(cross.name == o.name for o in self.crosses):
                raise ValueError(f"FeatureSpace: the cross name {cross.name!r} is used twice")
            self.crosses.append(cross)
        self.monotonic = self._check_monotonic(monotonic)
        self.output_mode = output_mode
        self.num_discretization_bins = int(num_discretization_bins)
        self.name = name or "feature_space"
        self._layers: dict[str, list] = {}
        self._inputs = None
        self._encoded = None
        self.built = False

    def _check_monotonic(self, monotonic) -> dict[str, int]:
        """{feature: +1 or -1}, the effects a model on these features declares
        (`MonotonicDense(units, monotonicity_indicator=fs.monotonic)`); only features whose encoding
        is monotone in their value can be declared, so a one-hot of a number is refused by name."""
        if monotonic is None:
            return {}
        if not isinstance(monotonic, dict):
            raise TypeError(f"FeatureSpace: monotonic must be a dict {{feature: +1 or -1}}, got {monotonic!r}")
        out = {}
        for col, direction in monotonic.items():
            if col not in self.features:
                raise ValueError(
                    f"FeatureSpace: monotonic names {col!r}, which is not a feature (features: {list(self.features)})"
                )
            if isinstance(direction, bool) or direction not in (1, -1):
                raise ValueError(f"FeatureSpace: monotonic[{col!r}] must be +1 or -1, got {direction!r}")
            feature = self.features[col]
            mode = feature.options.get("output_mode")
            if not (
                feature.kind in ("float", "float_normalized") or (feature.kind, mode) == ("float_discretized", "int")
            ):
                how = feature.kind + (f" with output_mode={mode!r}" if mode else "")
                raise ValueError(
                    f"FeatureSpace: feature {col!r} is declared monotonic but is encoded as {how}, which is not "
                    "monotone in its value; use float, float_normalized or float_discretized(output_mode='int')"
                )
            if any(col in c.feature_names for c in self.crosses):
                raise ValueError(f"FeatureSpace: feature {col!r} is declared monotonic and crossed; a cross is not")
            out[str(col)] = int(direction)
        return out

    @staticmethod
    def _from_kind(kind: str, bins: int) -> Feature:
        if kind not in _KINDS:
            raise ValueError(f"unknown feature kind {kind!r}; valid: {list(_KINDS)}")
        if kind == "float_discretized":
            return FeatureSpace.float_discretized(num_bins=bins)
        if kind in ("string_hashed", "integer_hashed"):
            return getattr(FeatureSpace, kind)(num_bins=32)
        return getattr(FeatureSpace, kind)()

    # -- declarations (Keras's static constructors) -----------------------------------------------
    @staticmethod
    def float(name=None):
        return Feature("float", name)

    @staticmethod
    def float_normalized(name=None):
        return Feature("float_normalized", name)

    @staticmethod
    def float_discretized(num_bins, bin_boundaries=None, output_mode="one_hot", name=None):
        return Feature(
            "float_discretized", name, num_bins=num_bins, bin_boundaries=bin_boundaries, output_mode=output_mode
        )

    @staticmethod
    def integer_categorical(max_tokens=None, num_oov_indices=1, output_mode="one_hot", embedding_dim=None, name=None):
        return Feature(
            "integer_categorical",
            name,
            max_tokens=max_tokens,
            num_oov_indices=num_oov_indices,
            output_mode=output_mode,
            embedding_dim=embedding_dim,
        )

    @staticmethod
    def string_categorical(max_tokens=None, num_oov_indices=1, output_mode="one_hot", embedding_dim=None, name=None):
        return Feature(
            "string_categorical",
            name,
            max_tokens=max_tokens,
            num_oov_indices=num_oov_indices,
            output_mode=output_mode,
            embedding_dim=embedding_dim,
        )

    @staticmethod
    def string_hashed(num_bins, output_mode="one_hot", name=None):
        return Feature("string_hashed", name, num_bins=num_bins, output_mode=output_mode)

    @staticmethod
    def integer_hashed(num_bins, output_mode="one_hot", name=None):
        return Feature("integer_hashed", name, num_bins=num_bins, output_mode=output_mode)

    @staticmethod
    def cross(feature_names, crossing_dim, output_mode="one_hot") -> Cross:
        """A cross of 2+ features hashed into `crossing_dim` bins (pass it in crosses=[...])."""
        return Cross(feature_names, crossing_dim, output_mode)

    @classmethod
    def from_dataframe(cls, df, target=None, features=None, exclude=(), **kwargs) -> FeatureSpace:
        """Infers each column's kind from its dtype (the recipe in the module docstring); `features`
        overrides it for the columns it names; `target` and `exclude` are left out."""
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"FeatureSpace.from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
        overrides = dict(features or {})
        skip = {target} if isinstance(target, str) else set(target or ())
        skip |= set(exclude)
        unknown = [c for c in list(overrides) + [c for c in skip if c is not None] if c not in df.columns]
        if unknown:
            raise ValueError(
                f"FeatureSpace.from_dataframe: column(s) {unknown} are not in the DataFrame "
                f"(columns: {[str(c) for c in df.columns]})"
            )
        chosen = {}
        for col in df.columns:
            if col in skip:
                continue
            if col in overrides:
                chosen[str(col)] = overrides[col]
                continue
            dt = df[col].dtype
            if pd.api.types.is_bool_dtype(dt):
                chosen[str(col)] = "integer_categorical"
            elif pd.api.types.is_numeric_dtype(dt):
                chosen[str(col)] = "float_normalized"
            else:
                chosen[str(col)] = "string_categorical"
        return cls(chosen, **kwargs)

    # -- adapt and build --------------------------------------------------------------------------
    def adapt(self, data) -> None:
        """Learns every feature's statistics from a DataFrame (or a dict of columns)."""
        if self.built:
            raise ValueError(f"FeatureSpace '{self.name}' is already adapted and in use; create a new one")
        columns = self._columns(data)
        crossed = {n for c in self.crosses for n in c.feature_names}
        for col, feature in self.features.items():
            values = columns[col]
            chain = []
            kind, opt = feature.kind, feature.options
            if kind in ("float", "float_normalized", "float_discretized"):
                raw = np.asarray(self._float_column(values, col), dtype=np.float64).reshape(-1, 1)
                if np.isnan(raw).all():
                    raise ValueError(f"FeatureSpace: feature {col!r} has no values in the adapt data (all missing)")
                if kind == "float_discretized":
                    disc = L.Discretization(
                        num_bins=opt["num_bins"] if opt["bin_boundaries"] is None else None,
                        bin_boundaries=opt["bin_boundaries"],
                        output_mode=self._index_mode(col, opt["output_mode"], crossed),
                        name=f"{col}_discretized",
                    )
                    if opt["bin_boundaries"] is None:
                        disc.adapt(raw)
                    chain = [disc] + self._encoder(col, opt["output_mode"], crossed, len(disc.bin_boundaries) + 1)
                else:
                    imp = L.Imputation(
                        strategy="median", add_indicator=bool(np.isnan(raw).any()), name=f"{col}_imputed"
                    )
                    imp.adapt(raw)
                    chain = [imp]
                    if kind == "float_normalized":
                        norm = L.Normalization(name=f"{col}_normalized")
                        filled = np.where(np.isnan(raw), imp._adapted, raw)
                        norm.adapt(np.concatenate([filled, np.isnan(raw)], axis=1) if imp.add_indicator else filled)
                        chain.append(norm)
            elif kind in ("string_categorical", "integer_categorical"):
                emb = opt.get("embedding_dim")
                mode = opt["output_mode"]
                mode = "int" if mode == "embedding" else self._index_mode(col, mode, crossed)
                cls = L.StringLookup if kind == "string_categorical" else L.IntegerLookup
                lookup = cls(
                    max_tokens=opt["max_tokens"],
                    num_oov_indices=opt["num_oov_indices"],
                    output_mode=mode,
                    name=f"{col}_lookup",
                )
                lookup.adapt(values if kind == "string_categorical" else self._float_column(values, col))
                chain = [lookup]
                if opt["output_mode"] != "embedding":
                    chain += self._encoder(col, opt["output_mode"], crossed, lookup.vocabulary_size())
                if opt["output_mode"] == "embedding":
                    size = lookup.vocabulary_size()
                    dim = emb or max(2, min(16, math.ceil(math.sqrt(size))))
                    chain += [L.Embedding(size, dim, name=f"{col}_embedding"), L.Flatten(name=f"{col}_flat")]
            else:  # hashed
                # Strings reserve bin 0 for missing values (and ""), so raw data with gaps never fails.
                mask = "" if kind == "string_hashed" else None
                chain = [
                    L.Hashing(
                        num_bins=opt["num_bins"],
                        mask_value=mask,
                        output_mode=self._index_mode(col, opt["output_mode"], crossed),
                        name=f"{col}_hashed",
                    )
                ]
                chain += self._encoder(col, opt["output_mode"], crossed, opt["num_bins"])
            self._layers[col] = chain
        self._adapted = True

    @staticmethod
    def _index_mode(col, mode, crossed) -> str:
        """A crossed feature's first layer gives the integer index (the cross's input)."""
        return "int" if col in crossed else mode

    @staticmethod
    def _encoder(col, mode, crossed, depth) -> list:
        """For a crossed feature: the CategoryEncoding that turns its index into its own output mode."""
        if col not in crossed or mode == "int":
            return []
        return [L.CategoryEncoding(num_tokens=depth, output_mode=mode, name=f"{col}_encoded")]

    def _columns(self, data) -> dict:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            cols = {str(c): data[c] for c in data.columns}
        elif isinstance(data, dict):
            cols = {str(k): v for k, v in data.items()}
        else:
            raise TypeError(f"FeatureSpace.adapt needs a DataFrame or a dict of columns, got {type(data).__name__}")
        missing = [c for c in self.features if c not in cols]
        if missing:
            raise ValueError(f"FeatureSpace.adapt: the data has no column(s) {missing}")
        if any(len(v) == 0 for v in cols.values()):
            raise ValueError("FeatureSpace.adapt: the data has no rows")
        return cols

    @staticmethod
    def _float_column(values, col):
        return data.numeric_column(values, f"feature '{col}'", allow_missing=True).astype(np.float64)

    def _build(self) -> None:
        if not getattr(self, "_adapted", False):
            raise ValueError(f"FeatureSpace '{self.name}' is not adapted: call adapt(df) first")
        if self.built:
            return
        self._inputs, outputs, indices = {}, {}, {}
        for col, feature in self.features.items():
            inp = L.Input(shape=(1,), name=col, dtype=feature.dtype)
            x = inp
            for i, layer in enumerate(self._layers[col]):
                x = layer(x)
                if i == 0:
                    indices[col] = x  # a crossed feature's integer index
            self._inputs[col], outputs[col] = inp, x
        for cross in self.crosses:
            layer = L.HashedCrossing(
                num_bins=cross.crossing_dim, output_mode=cross.output_mode, name=f"{cross.name}_crossed"
            )
            outputs[cross.name] = layer([indices[n] for n in cross.feature_names])
        self._outputs = outputs
        if self.output_mode == "concat":
            tensors = list(outputs.values())
            self._encoded = tensors[0] if len(tensors) == 1 else L.Concatenate(name=f"{self.name}_concat")(tensors)
        else:
            self._encoded = outputs
        self.built = True

    def get_inputs(self) -> dict:
        """{feature name: Input tensor}, for Model(inputs=...)."""
        self._build()
        return dict(self._inputs)

    def get_encoded_features(self):
        """The encoded tensor (output_mode="concat") or a dict of per-feature tensors ("dict")."""
        self._build()
        return self._encoded if self.output_mode == "concat" else dict(self._encoded)

    def feature_columns(self) -> dict[str, list[int]]:
        """{raw feature (or cross): [columns of the concatenated encoded tensor computed from it]}, so a
        declaration by raw feature name (MonotonicDense(monotonicity_indicator={...})) finds its columns."""
        self._build()
        if self.output_mode != "concat":
            raise ValueError(f"FeatureSpace '{self.name}': feature_columns needs output_mode='concat'")
        return feature_columns(self._encoded)

    def __repr__(self) -> str:
        crosses = "".join(f", {c.name}=cross({c.crossing_dim})" for c in self.crosses)
        return f"<FeatureSpace {self.name}: {', '.join(f'{c}={f.kind}' for c, f in self.features.items())}{crosses}>"
