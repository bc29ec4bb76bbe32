"""Streaming input for fit/evaluate/predict: PyDataset (Keras 3), generators and ParquetDataset.

`maasfin.utils.PyDataset` and `maasfin.data.ParquetDataset` are these classes; `feed` turns any of
them into chunks of many equal-size batches, checked and converted on a background thread.
"""

from maasfin.streaming.parquet import ParquetDataset
from maasfin.streaming.pydataset import PyDataset

__all__ = ["PyDataset", "ParquetDataset"]
