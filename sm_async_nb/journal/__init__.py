"""The journal: SQLite storage of every invocation (``store``), its schema and row codec
(``schema``), and journal rows as a DataFrame (``frames``)."""

from .schema import SCHEMA_VERSION
from .store import Journal

__all__ = ["SCHEMA_VERSION", "Journal"]
