"""`EstimatorModel`: a saved scikit-learn, XGBoost or LightGBM model with the serving surface of a network.

`maasfin.load_model` returns one for a file written by `save_estimator`. It has the public
interface the server and explanations use (`signature`, `prepare_inputs`, `predict_arrays`,
`index_limits`, `drift_reference`, `predict`), so `maasfin serve` serves it beside networks
unchanged. Inference runs in ONNX Runtime, whose `run` is thread-safe and releases the GIL.
"""

from __future__ import annotations

import numpy as np

from maasfin import data
from maasfin import explain as explain_module
from maasfin.saving.estimators.kernel import kernel_shap
from maasfin.saving.estimators.schema import STRING, InputSchema
from maasfin.signature import Signature, TensorSpec


class EstimatorModel:
    """A fitted estimator as an ONNX graph plus its input schema (saving/estimators/)."""

    def __init__(self, name: str, schema: InputSchema, info: dict, session, explanations: dict | None = None):
        self.name = name
        self.schema = schema
        self.info = info  # config.json "estimator": class, library, task, classes, outputs, layout
        self._session = session
        self._inputs = [i.name for i in session.get_inputs()]
        self._output = info["output"]
        self._width = len(info["classes"]) if info["task"] == "classification" else 1
        explanations = explanations or {}
        self._drift_reference = explanations.get("drift_reference")
        self._explain_baseline = explanations.get("baseline")
        self._reason_codes = explanations.get("reason_codes")
        self.background = explanations.get("background")
        self._trees = explanations.get("trees")  # a _core.TreeEnsemble, for TreeSHAP
        self._covers = explanations.get("tree_covers") is not None  # path-dependent TreeSHAP needs them
        self._linear = explanations.get("linear")  # LinearContributions, for additive linear pipelines

    def __repr__(self) -> str:
        return f"<EstimatorModel {self.name!r}: {self.info['library']} {self.info['class']}>"

    # -- the public model interface ---------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return list(self.schema.names)

    def raw_feature_names(self) -> list[str]:
        """One name per raw feature (the columns of drift reports)."""
        return list(self.schema.names)

    @property
    def classes(self) -> list | None:
        return list(self.info["classes"]) if self.info["task"] == "classification" else None

    @property
    def signature(self) -> Signature:
        """One (1,)-shaped input per raw feature (strings as category indices, missing values
        accepted); the output is predict_proba's columns, or the regression value."""
        return Signature(
            inputs=tuple(TensorSpec(n, (1,), "string" if d == STRING else "float32", True) for n, d in self._specs()),
            output=TensorSpec(self._output, (self._width,)),
            feature_names=tuple(self.schema.names),
            raw=True,
            strings=self.schema.strings,
        )

    def _specs(self):
        return zip(self.schema.names, self.schema.dtypes)

    def index_limits(self) -> dict:
        """No input is read as an integer index by a layer (string indices are checked by `predict_arrays`)."""
        return {}

    @property
    def drift_reference(self):
        """The reference of drift reports, computed from the saved example (per-feature and score bins)."""
        return self._drift_reference

    def prepare_inputs(self, x, what: str = "x") -> list[np.ndarray]:
        """The data boundary: `x` (DataFrame, dict of columns, records, 2-D array in feature order)
        as one float32 (rows, 1) array per feature; unknown categories and features name the field."""
        return self.schema.prepare(x, what)

    def predict_arrays(self, xs: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Predictions (float32, rows x outputs) for arrays from `prepare_inputs`, in one ONNX Runtime call."""
        data.positive_int(batch_size, "batch_size")
        xs = [np.asarray(a, dtype=np.float32).reshape(-1, 1) for a in xs]
        self.schema.check_codes(xs)
        feeds = self.schema.onnx_feeds(xs, self.info["layout"], self._inputs)
        y = self._session.run([self._output], feeds)[0]
        return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(xs[0].shape[0], self._width))

    def predict(self, x, batch_size: int = 32, verbose=0, **kwargs) -> np.ndarray:
        """predict_proba (classifiers: one column per class, in `classes` order) or the
        regression value, for raw records, DataFrames or arrays."""
        return self.predict_arrays(self.prepare_inputs(x, "x"), batch_size)

    # -- explanations ------------------------------------------------------------------------
    def _explained(self, xs: list[np.ndarray], perturbation: str = "tree_path_dependent") -> np.ndarray:
        """(rows, features + 1) attributions of prepared inputs, the last column the expected
        value: exact in margin space for tree ensembles (TreeSHAP, path-dependent with the node
        covers or interventional against the stored background) and additive linear pipelines;
        seeded Kernel SHAP of the positive class's probability (or the value) for the rest."""
        if perturbation not in ("tree_path_dependent", "interventional"):
            raise ValueError(
                f"feature_perturbation must be 'tree_path_dependent' or 'interventional', got {perturbation!r}"
            )
        if self._trees is not None and not self._covers and perturbation == "tree_path_dependent":
            raise ValueError(
                f"estimator {self.name!r} has no node covers (its example missed some tree nodes): use "
                "feature_perturbation='interventional', or save it with the training data as the example"
            )
        if self._trees is not None:
            self.schema.check_codes(xs)
            flat = np.ascontiguousarray(np.concatenate([np.asarray(a, np.float32).reshape(-1, 1) for a in xs], axis=1))
            if perturbation == "interventional":
                if self.background is None:
                    raise ValueError(f"estimator {self.name!r} was saved without an explanation background")
                return self._trees.shap_interventional(flat, np.ascontiguousarray(self.background, np.float32))
            return self._trees.shap(flat)
        if self._linear is not None:
            xs = [np.asarray(a, dtype=np.float32).reshape(-1, 1) for a in xs]
            self.schema.check_codes(xs)
            feeds = self.schema.onnx_feeds(xs, self.info["layout"], self._inputs)
            return self._linear.contributions(self._session.run([self._linear.output], feeds)[0])
        if self.background is None:
            raise ValueError(f"estimator {self.name!r} was saved without an explanation background")
        return self._kernel(xs)

    def _kernel(self, xs: list[np.ndarray], nsamples: int = 2048, seed: int = 0) -> np.ndarray:
        """Seeded Kernel SHAP over the stored background, on the explained output: the positive
        class's probability (binary classifiers), the value (regressors)."""
        xs = [np.asarray(a, dtype=np.float32).reshape(-1, 1) for a in xs]
        self.schema.check_codes(xs)
        column = 1 if self._width == 2 else 0
        if self._width > 2:
            raise ValueError(f"estimator {self.name!r}: explanations cover binary classifiers and regressors")

        def f(m: np.ndarray) -> np.ndarray:
            cols = [np.ascontiguousarray(m[:, j : j + 1]) for j in range(m.shape[1])]
            return self.predict_arrays(cols)[:, column].astype(np.float64)

        x = np.concatenate(xs, axis=1)
        return kernel_shap(f, x, np.asarray(self.background, np.float32), nsamples, seed)

    def shap_values(self, x, feature_perturbation: str = "tree_path_dependent") -> np.ndarray:
        """Exact attributions in margin space: TreeSHAP in the C++ core for a tree ensemble
        (log-odds of the positive class for boosted classifiers, its probability for forests;
        feature_perturbation "tree_path_dependent" uses the node covers, "interventional" the
        stored background rows), exact contributions (per raw feature, through the encoders) for a
        linear model. (rows, features + 1), the last column the expected margin (the mean
        background margin when interventional); each row sums to the margin."""
        return self._explained(self.prepare_inputs(x, "x"), feature_perturbation)

    def attribute_arrays(self, xs: list[np.ndarray]) -> np.ndarray:
        """Attributions (rows x features, float32) of arrays from `prepare_inputs`: what the
        server's explanation endpoints and `maasfin.explain.reasons_from_attributions` use."""
        return self._explained(xs)[:, :-1].astype(np.float32)

    def explain(self, x):
        """The attributions of every raw feature per row (margin space) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.shap_values(x)[:, :-1], columns=self.schema.names)

    def reasons(self, x, top_k: int = 4, adverse: str = "high") -> list[list[dict]]:
        """Per row, the top-k features that pushed the margin up (adverse='high') or down, with
        their contributions: the reason codes of networks, from exact attributions."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if adverse not in ("high", "low"):
            raise ValueError(f"adverse must be 'high' or 'low', got {adverse!r}")
        values = self.shap_values(x)[:, :-1]
        return explain_module.reasons_from_attributions(self, values, top_k, adverse)

    def margin(self, x) -> np.ndarray:
        """The margin (before the output's logistic/softmax) of each row: the sum of its attributions."""
        if self._trees is not None:
            xs = self.prepare_inputs(x, "x")
            self.schema.check_codes(xs)
            return self._trees.margin(np.ascontiguousarray(np.concatenate(xs, axis=1), dtype=np.float32))
        return self.shap_values(x).sum(axis=1)
