"""ocsscale: move a service from one server to a load-balanced pool, every step proven."""

__version__ = "0.1.0"
