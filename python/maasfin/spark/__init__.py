"""maasfin on Spark: score (pandas UDF) and explain (mapInPandas) Spark DataFrames; fit by streaming partitions.

Needs `pip install "maasfin[spark]"` (pyspark; a Java runtime). `import maasfin` does not load this
package. See docs/scale-out.md.
"""

from maasfin.spark.scoring import explain, predict
from maasfin.spark.training import SparkDataset, fit

__all__ = ["predict", "explain", "fit", "SparkDataset"]
