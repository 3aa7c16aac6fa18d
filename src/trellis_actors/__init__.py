"""Trellis: a background-task orchestration runtime for Python, built on trio actors."""

from ._backoff import Backoff as Backoff
from ._backoff import compute_backoff as compute_backoff
from .errors import TrellisError as TrellisError

__version__ = "0.1.0"
