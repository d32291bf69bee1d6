"""Errors raised by the repositories.

StoreError
+-- DuplicateError   a unique value (account number, username, extension...) is taken;
|                    also a ValueError. .field and .value name it.
+-- NotFoundError    the row to update does not exist; also a LookupError.
"""

from __future__ import annotations

__all__ = ["DuplicateError", "NotFoundError", "StoreError"]


class StoreError(Exception):
    """Base of every error raised by ``store`` and the repositories built on it."""


class DuplicateError(StoreError, ValueError):
    def __init__(self, entity: str, field: str, value: object) -> None:
        self.entity = entity
        self.field = field
        self.value = value
        super().__init__(f"{entity} {field} {value!r} is already in use")


class NotFoundError(StoreError, LookupError):
    def __init__(self, entity: str, key: object) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"no {entity} with id {key!r}")
