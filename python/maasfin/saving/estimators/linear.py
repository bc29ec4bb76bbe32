"""Exact contributions of linear models behind per-column encoders, summed per raw feature.

A Pipeline(ColumnTransformer, linear head) whose transformers each act column by column
(SimpleImputer without indicators, StandardScaler, OneHotEncoder, or Pipelines of them) has a
margin that is a sum of one function per raw feature: margin = b + sum_k w_k z_k, each encoded
column z_k coming from one raw feature. Raw feature j's contribution is sum over its columns of
w_k (z_k - mean z_k), the mean over the example: exact, and summing per row to the margin minus
the expected margin. The graph is saved with the head's input as an extra output so that the
served model computes z in ONNX Runtime.
"""

from __future__ import annotations

import numpy as np

from maasfin.saving.explanations import finite_list
from maasfin.saving.file_format import check_int, check_list, check_object, check_str, fail

PER_COLUMN = ("SimpleImputer", "StandardScaler", "OneHotEncoder", "MinMaxScaler", "RobustScaler", "MaxAbsScaler")
HEADS = ("LinearClassifier", "LinearRegressor")


def _per_column(t) -> bool:
    steps = getattr(t, "steps", None)
    if steps is not None:
        return all(_per_column(s) for _, s in steps)
    if type(t).__name__ == "SimpleImputer" and getattr(t, "add_indicator", False):
        return False
    return type(t).__name__ in PER_COLUMN or t == "passthrough"


def _widths(t, columns: list) -> list[int]:
    """Encoded columns produced per raw column by transformer `t`."""
    steps = getattr(t, "steps", None)
    last = steps[-1][1] if steps else t
    if type(last).__name__ == "OneHotEncoder":
        dropped = getattr(last, "drop_idx_", None)
        return [len(c) - (0 if dropped is None or dropped[i] is None else 1) for i, c in enumerate(last.categories_)]
    return [1] * len(columns)


def linear_state(estimator, proto, names: list[str], encoded_example: np.ndarray | None = None):
    """(graph with the head's input as an extra output, config state) for an additive linear
    pipeline of a binary classifier or a regressor, else None."""
    steps = getattr(estimator, "steps", None)
    if not steps or len(steps) != 2 or type(steps[0][1]).__name__ != "ColumnTransformer":
        return None
    ct, head = steps[0][1], steps[1][1]
    coef = np.asarray(getattr(head, "coef_", None), dtype=np.float64) if hasattr(head, "coef_") else None
    if coef is None or coef.ndim > 2 or (coef.ndim == 2 and coef.shape[0] != 1):
        return None
    groups = []
    for tname, t, cols in ct.transformers_:
        if tname == "remainder" and t == "drop":
            continue
        if not _per_column(t) or not isinstance(cols, (list, tuple)) or not all(isinstance(c, str) for c in cols):
            return None
        for c, w in zip(cols, _widths(t, list(cols))):
            groups.extend([names.index(c)] * w)
    nodes = [n for n in proto.graph.node if n.op_type in HEADS]
    if len(nodes) != 1 or len(groups) != coef.reshape(-1).size:
        return None
    encoded = nodes[0].input[0]
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    out.graph.output.append(onnx.helper.make_tensor_value_info(encoded, onnx.TensorProto.FLOAT, [None, len(groups)]))
    intercept = float(np.asarray(head.intercept_, dtype=np.float64).reshape(-1)[0])
    return out, {
        "encoded_output": encoded,
        "coef": coef.reshape(-1).tolist(),
        "intercept": intercept,
        "groups": groups,
        "mean": None,
    }


def with_mean(state: dict, z: np.ndarray) -> dict:
    """The state with the example's mean encoded row (the expectation contributions are taken from)."""
    return {**state, "mean": np.asarray(z, dtype=np.float64).mean(axis=0).tolist()}


class LinearContributions:
    """Checked linear state of a file: contributions from the encoded rows ONNX Runtime computes."""

    def __init__(self, doc, src: str, num_features: int):
        check_object(doc, src, "explanations.linear", ("encoded_output", "coef", "intercept", "groups", "mean"))
        self.output = check_str(doc["encoded_output"], src, "explanations.linear.encoded_output")
        self.coef = np.asarray(finite_list(doc["coef"], src, "explanations.linear.coef", max_len=10_000_000))
        k = self.coef.size
        self.mean = np.asarray(finite_list(doc["mean"], src, "explanations.linear.mean", length=k))
        self.intercept = finite_list([doc["intercept"]], src, "explanations.linear.intercept")[0]
        groups = check_list(doc["groups"], src, "explanations.linear.groups", k)
        if len(groups) != k:
            raise fail(src, f"explanations.linear.groups has {len(groups)} entries, expected {k}")
        self.groups = np.array(
            [check_int(g, src, f"explanations.linear.groups[{i}]", 0, num_features - 1) for i, g in enumerate(groups)]
        )
        self.num_features = num_features
        self.expected = float(self.intercept + self.coef @ self.mean)

    def contributions(self, z: np.ndarray) -> np.ndarray:
        """(rows, features + 1): per raw feature sum of w_k (z_k - mean_k), then the expected margin."""
        z = np.asarray(z, dtype=np.float64).reshape(-1, self.coef.size)
        parts = (z - self.mean) * self.coef
        out = np.zeros((z.shape[0], self.num_features + 1))
        np.add.at(out, (slice(None), self.groups), parts)
        out[:, -1] = self.expected
        return out
