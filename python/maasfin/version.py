"""The maasfin release this package is."""

VERSION = "0.1.0"
