"""Xuncha (巡查): the backend city-management inspectors' phones sync with."""

__version__ = "0.1.0"
