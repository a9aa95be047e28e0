"""The package version, in a module of its own so that any layer can read it without importing
``tmstate`` (whose ``__init__`` registers the env ids and exposes the API)."""

__version__ = "0.1.0"
