"""Stores: where tasks live. ``open_store(url)`` picks one by URL scheme."""

from ..errors import ConfigurationError
from .base import Store
from .memory import MemoryStore


def open_store(url: str) -> Store:
    if url.startswith("memory://"):
        return MemoryStore(url)
    raise ConfigurationError(f"unknown store URL {url!r}; use memory://")
