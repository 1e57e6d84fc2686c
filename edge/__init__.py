"""polewatch pole-unit runtime: listen, detect gunshots, report."""

__version__ = "0.1.0"
