"""dfjax: make face-swap fakes and measure how well they can be detected, in JAX."""

__version__ = "0.1.0"
