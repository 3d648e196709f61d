"""The one entity: a post. Author features are stored per post, as of the post's time."""

from feast import Entity, ValueType

post = Entity(
    name="post",
    join_keys=["post_id"],
    value_type=ValueType.STRING,
    description="A social media post (SMPD Pid, SMP-Video pid).",
)
