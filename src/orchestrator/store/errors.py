"""Errors the store raises (bad arguments are plain ValueError, as everywhere in Hotline)."""

from __future__ import annotations

__all__ = ["SchemaError", "StoreClosedError", "StoreError"]


class StoreError(Exception):
    """The database refused or failed an operation (the cause is chained)."""


class StoreClosedError(StoreError):
    """The event log was closed; nothing more can be appended or read."""


class SchemaError(StoreError):
    """The database's schema cannot be used by this version of Hotline."""
