"""Which online store Feast writes and the service reads, by the name the settings give it.

``sqlite`` is :class:`~smp_platform.infra.sqlite_store.WideSqliteOnlineStore` under the data
dir (the embedded default), ``redis`` Feast's Redis store (the compose stack); anything else is
the dotted path of a Feast ``OnlineStore`` class of the user's own (docs/EXTENDING.md). Light to
import: Feast loads the classes by these paths itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ONLINE_STORES = {
    "sqlite": "smp_platform.infra.sqlite_store.WideSqliteOnlineStore",
    "redis": "redis",
}


def has_stored_row(values: Mapping[str, Any] | None) -> bool:
    """Whether an ``online_read`` answer for one key is a stored row. SQLite answers None for a
    missing key, Redis a dict of empty values; a written row always has its non-null
    bookkeeping fields, so any set value means a row."""
    if not values:
        return False
    return any(v.WhichOneof("val") is not None for v in values.values())
