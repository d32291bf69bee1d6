"""Callwright's database layer: one shared MetaData, the engine factory, migrations.

Tables live next to the code that uses them (``crm.persistence``,
``routing.persistence``, ``cti.persistence``); ``store.schema.load_all()`` registers
them all. ``store.migrate.upgrade(url)`` brings a database to the latest schema.
"""

from store.db import NAMING_CONVENTION, make_engine, metadata, ping, safe_url, sqlite_url
from store.errors import DuplicateError, NotFoundError, StoreError
from store.types import UtcDateTime, as_utc, from_epoch, to_epoch, utc_now

__all__ = [
    "NAMING_CONVENTION",
    "DuplicateError",
    "NotFoundError",
    "StoreError",
    "UtcDateTime",
    "as_utc",
    "from_epoch",
    "make_engine",
    "metadata",
    "ping",
    "safe_url",
    "sqlite_url",
    "to_epoch",
    "utc_now",
]
