"""maasfin on Dask: score and explain Dask DataFrames, and fit on one by streaming its partitions.

Needs `pip install "maasfin[dask]"` (dask[dataframe], distributed). Works with Dask's local
schedulers, a `distributed.LocalCluster` and any cluster a `distributed.Client` is connected to
(by address); `import maasfin` does not load this package. See docs/scale-out.md.
"""

from maasfin.dask.scoring import explain, predict
from maasfin.dask.training import DaskDataset, fit

__all__ = ["predict", "explain", "fit", "DaskDataset"]
