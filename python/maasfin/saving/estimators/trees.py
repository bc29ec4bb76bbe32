"""The tree ensemble of an estimator's ONNX graph, for exact TreeSHAP in the core (`_core.TreeEnsemble`).

Reads the one TreeEnsembleClassifier/Regressor node that takes the graph's matrix input: its
node arrays become flat arrays (children by position), its leaves the weights of the explained
output (the positive class of a binary classifier, the regression target), in margin space (before
the node's post_transform). Node covers are the number of example rows reaching each node,
computed at save time and stored in config.json ("tree_covers").
"""

from __future__ import annotations

import numpy as np

from maasfin import _core

MODES = {b"BRANCH_LEQ": 0, b"BRANCH_LT": 1}


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def ensemble_node(proto):
    """The TreeEnsemble node fed by the graph input, or None (a pipeline, several ensembles)."""
    nodes = [n for n in proto.graph.node if n.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor")]
    inputs = [i.name for i in proto.graph.input]
    if len(nodes) != 1 or len(inputs) != 1 or list(nodes[0].input) != inputs:
        return None
    return nodes[0]


def tree_ensemble(proto, num_features: int):
    """A `_core.TreeEnsemble` of the graph's ensemble, or a ValueError saying why there is none."""
    node = ensemble_node(proto)
    if node is None:
        raise ValueError("TreeSHAP needs a tree ensemble that reads the raw features directly (no pipeline)")
    a = _attributes(node)
    trees, ids = np.asarray(a["nodes_treeids"], np.int64), np.asarray(a["nodes_nodeids"], np.int64)
    n = trees.size
    pos = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(trees, ids))}
    if len(pos) != n:
        raise ValueError("the tree ensemble has duplicate node ids")
    modes = a["nodes_modes"]
    leaf = np.array([m == b"LEAF" for m in modes])
    bad = sorted({m.decode() for m in modes if m != b"LEAF" and m not in MODES})
    if bad:
        raise ValueError(f"TreeSHAP does not support the split mode(s) {bad}")
    yes = np.array(
        [pos.get((int(t), int(c)), -1) if not lf else 0 for t, c, lf in zip(trees, a["nodes_truenodeids"], leaf)]
    )
    no = np.array(
        [pos.get((int(t), int(c)), -1) if not lf else 0 for t, c, lf in zip(trees, a["nodes_falsenodeids"], leaf)]
    )
    children = set(yes[~leaf].tolist()) | set(no[~leaf].tolist())
    roots = [k for k in range(n) if k not in children]
    if node.op_type == "TreeEnsembleClassifier":
        prefix, labels = "class_", a.get("classlabels_int64s") or a.get("classlabels_strings")
        if len(labels) != 2:
            raise ValueError("TreeSHAP explains binary classifiers and regressors")
        column = 1 if 1 in a["class_ids"] else 0  # one weight column: the positive class's score
    else:
        prefix, column = "target_", 0
    value = np.zeros(n)
    for t, i, c, w in zip(a[f"{prefix}treeids"], a[f"{prefix}nodeids"], a[f"{prefix}ids"], a[f"{prefix}weights"]):
        if c == column:
            value[pos[(int(t), int(i))]] += w
    base = a.get("base_values") or [0.0]
    b = float(base[column] if len(base) > column else base[0])
    return _core.TreeEnsemble(
        roots,
        [-1 if lf else int(f) for f, lf in zip(a["nodes_featureids"], leaf)],
        [float(v) for v in a["nodes_values"]],
        yes.tolist(),
        no.tolist(),
        [0 if lf else MODES[m] for m, lf in zip(modes, leaf)],
        [int(v) for v in a.get("nodes_missing_value_tracks_true", [0] * n)],
        value.tolist(),
        num_features,
        b,
    )


def covers(proto, estimator, library: str, x: np.ndarray) -> list[float] | None:
    """Node covers for path-dependent TreeSHAP, in the ensemble's node order, or None when the
    graph has no explainable ensemble: the model's own covers where the graph's node numbering is
    the model's (XGBoost's hessian sums, scikit-learn forests' and GradientBoosting's weighted sample
    counts: what shap.TreeExplainer uses), else the number of rows of `x` (the example) reaching
    each node, which are LightGBM's and HistGradientBoosting's counts when `x` is the training data."""
    try:
        ens = tree_ensemble(proto, x.shape[1])
    except ValueError:
        return None
    a = _attributes(ensemble_node(proto))
    if library == "xgboost":
        return _xgboost_covers(a, estimator)
    if library == "scikit-learn" and hasattr(estimator, "estimators_"):
        # forests and GradientBoosting: each tree's weighted sample counts (a forest's bootstrap
        # samples), by tree and node index as skl2onnx numbers them
        trees = np.asarray(estimator.estimators_, dtype=object).reshape(-1)
        table = {
            (t, i): float(c) for t, tree in enumerate(trees) for i, c in enumerate(tree.tree_.weighted_n_node_samples)
        }
    else:
        ens.set_cover_from(np.ascontiguousarray(x, dtype=np.float32))
        counted = list(ens.cover)
        # A node no example row reaches has no conditional expectation: no TreeSHAP for this file
        # (give the training data as the example).
        return counted if min(counted) > 0 else None
    return [table.get((int(t), int(i)), 0.0) for t, i in zip(a["nodes_treeids"], a["nodes_nodeids"])]


def _xgboost_covers(a: dict, estimator) -> list[float]:
    """XGBoost's covers, matched to the graph's nodes by walking both trees from their roots
    (onnxmltools numbers nodes in its own order; "yes" is the true branch in both)."""
    frame = estimator.get_booster().trees_to_dataframe()
    ids = {k: i for i, k in enumerate(frame["ID"])}
    yes_id, no_id, cover = list(frame["Yes"]), list(frame["No"]), list(frame["Cover"])
    trees, nodes = list(a["nodes_treeids"]), list(a["nodes_nodeids"])
    pos = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(trees, nodes))}
    out = [0.0] * len(trees)
    for t in sorted(set(int(v) for v in trees)):
        stack = [(pos[(t, 0)], f"{t}-0")]
        while stack:
            k, key = stack.pop()
            row = ids[key]
            out[k] = float(cover[row])
            if a["nodes_modes"][k] != b"LEAF":
                stack.append((pos[(t, int(a["nodes_truenodeids"][k]))], yes_id[row]))
                stack.append((pos[(t, int(a["nodes_falsenodeids"][k]))], no_id[row]))
    return out
