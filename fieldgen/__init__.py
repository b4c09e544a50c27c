"""fieldgen: the finite-size field theory of residual networks as tested, fast numeric code."""
__version__ = "0.1.0"
