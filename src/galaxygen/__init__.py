"""galaxygen: fast galaxy generation from dark-matter fields, and the tools to judge it."""

__version__ = "0.1.0"
