"""The one entity: a post. Author features are stored per post, as of the post's time."""

from __future__ import annotations

from typing import Any

from smp_platform.features.schema import ENTITY, POST_ID


def build_entity() -> Any:
    """The Feast ``Entity`` (Feast imported here, not at module import)."""
    from feast import Entity, ValueType

    return Entity(
        name=ENTITY,
        join_keys=[POST_ID],
        value_type=ValueType.STRING,
        description="A social media post (SMPD Pid, SMP-Video pid).",
    )
