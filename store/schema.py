"""Registers every table on ``store.metadata`` by importing the modules that define them."""

from __future__ import annotations

from sqlalchemy import MetaData

from store.db import metadata

__all__ = ["load_all"]


def load_all() -> MetaData:
    """Import every ``persistence`` module and return the now complete ``metadata``."""
    import agent_desk.audit  # noqa: F401
    import crm.mail.persistence
    import crm.persistence  # noqa: F401
    import cti.keys
    import cti.persistence  # noqa: F401
    import ivr.persistence  # noqa: F401
    import recordings.persistence  # noqa: F401
    import routing.journal
    import routing.persistence  # noqa: F401

    return metadata
