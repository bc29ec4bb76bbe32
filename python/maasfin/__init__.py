from maasfin import _core
