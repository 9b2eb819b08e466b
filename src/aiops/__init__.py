"""aiops: AI functions as code."""

__version__ = "0.1.0"
