"""The vocabulary a feature group declares its views in: dtypes, fields (with their validation
rules), views, and the keys and bookkeeping columns every stored row carries.

Nothing here imports Feast or pandas: ``feature_repo`` maps these to Feast objects when it is
asked to, the offline store to parquet schemas, the validation to Great Expectations suites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# The entity of every view, and its join key (also the warehouse's post key).
ENTITY = "post"
POST_ID = "post_id"
# The post's publication time: a row holds what was known then (point-in-time joins).
EVENT_TIMESTAMP = "event_timestamp"
# When the row was computed: Feast keeps the latest for a given event time.
CREATED_AT = "created_at"
# Bookkeeping columns of every stored row, added by the platform (never by a group).
INPUT_HASH = "input_hash"
ENCODER_ID = "encoder_id"


class Dtype(StrEnum):
    FLOAT64 = "float64"
    FLOAT32 = "float32"
    INT64 = "int64"
    STRING = "string"
    BOOL = "bool"
    FLOAT32_ARRAY = "float32[]"  # an embedding: one field, never 512 scalar columns

    @property
    def is_array(self) -> bool:
        return self is Dtype.FLOAT32_ARRAY

    @property
    def is_numeric(self) -> bool:
        return self in (Dtype.FLOAT64, Dtype.FLOAT32, Dtype.INT64)


class FieldKind(StrEnum):
    """What a field is, where its dtype alone does not say (the Feast field tag ``kind``).

    ``terms``: a string the model weighs as a bag of words (TF-IDF + SVD fitted inside the
    registered model) instead of a category. ``similarity``: an (in)consistency signal, a cosine
    between two sides of a post (read as a number; the report draws it by popularity band).
    """

    TERMS = "terms"
    SIMILARITY = "similarity"


# Core features may be null on at most this fraction of a batch (override per field).
DEFAULT_MAX_NULL_FRACTION = 0.5
# Cosine similarities computed in float32 can overshoot +-1 by rounding.
SIMILARITY_EPSILON = 1e-4


@dataclass(frozen=True)
class Rule:
    """What a field's values must satisfy beyond its dtype, checked on every batch before it is
    written (``None``: no bound). Numbers are also checked to be finite, embeddings to have one
    length per batch and finite values."""

    min_value: float | None = None
    max_value: float | None = None
    strict_min: bool = False
    # 1.0: the field may be entirely null (a source without it, an encoder switched off).
    max_null_fraction: float = DEFAULT_MAX_NULL_FRACTION
    value_set: tuple[object, ...] | None = None
    unit_norm: bool = False  # embeddings only


DEFAULT = Rule()
NON_NEGATIVE = Rule(min_value=0)
OPTIONAL = Rule(max_null_fraction=1.0)
OPTIONAL_NON_NEGATIVE = Rule(min_value=0, max_null_fraction=1.0)
REQUIRED = Rule(max_null_fraction=0.0)
SIMILARITY = Rule(min_value=-1 - SIMILARITY_EPSILON, max_value=1 + SIMILARITY_EPSILON)
OPTIONAL_SIMILARITY = Rule(
    min_value=-1 - SIMILARITY_EPSILON, max_value=1 + SIMILARITY_EPSILON, max_null_fraction=1.0
)
UNIT_EMBEDDING = Rule(unit_norm=True)


@dataclass(frozen=True)
class Field:
    """One stored feature: its name (unique across every view), dtype, description, how a model
    reads it when the dtype does not say (``kind``) and the rule its values must satisfy."""

    name: str
    dtype: Dtype
    description: str = ""
    kind: FieldKind | None = None
    rule: Rule = DEFAULT

    @property
    def tags(self) -> dict[str, str]:
        return {"kind": str(self.kind)} if self.kind else {}


# Every stored row says what it was computed from: a null here would recompute it forever.
BOOKKEEPING_FIELDS = (
    Field(INPUT_HASH, Dtype.STRING, "hash of the inputs the row came from", rule=REQUIRED),
    Field(
        ENCODER_ID,
        Dtype.STRING,
        "model name + weights fingerprint (else code version)",
        rule=REQUIRED,
    ),
)
# Names no group may give a field: the keys and the bookkeeping of every row.
RESERVED_NAMES = frozenset({POST_ID, EVENT_TIMESTAMP, CREATED_AT, INPUT_HASH, ENCODER_ID})


@dataclass(frozen=True)
class View:
    """One Feast feature view: a table keyed by ``post_id`` that a group's compute fills.

    ``optional``: a recipe search may leave the view out (``smp tune``); a view a model must
    always read (who posted, when) says False. ``publication_time``: the view describes when the
    post is published, so a draft's best-time curve recomputes it for each hour and keeps the
    rest. ``tags`` are Feast tags (the group's name is added as ``group``).
    """

    name: str
    description: str
    fields: tuple[Field, ...]
    optional: bool = True
    publication_time: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def stored_fields(self) -> tuple[Field, ...]:
        """Features plus the bookkeeping fields every stored row carries."""
        return (*self.fields, *BOOKKEEPING_FIELDS)
