"""The SQLite buffer: every reading is stored here first (store-and-forward)."""

from .database import Database, StoreFullError
from .store import Store

__all__ = ["Database", "Store", "StoreFullError"]
