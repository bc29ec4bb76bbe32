"""scikit-learn estimators around maasfin models: Keras 3's keras.wrappers names and arguments.

Needs scikit-learn (`pip install "maasfin[sklearn]"`); `import maasfin` does not load this package.
"""

from maasfin.wrappers.estimators import SKLearnClassifier, SKLearnRegressor

__all__ = ["SKLearnClassifier", "SKLearnRegressor"]
