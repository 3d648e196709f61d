"""Feature groups: the unit a user adds (:class:`FeatureGroup`), the built-in ones
(:mod:`smp_platform.features.groups`), the registry that loads them with the user's own
(:mod:`~smp_platform.features.registry`), and the pure feature functions and encoders they use.

A group of your own imports what it needs from here (docs/EXTENDING.md)::

    from smp_platform.features import Dtype, FeatureGroup, Field, Input, View
"""

from smp_platform.features.encoders import EncoderUnavailable
from smp_platform.features.group import (
    AblationStage,
    FeatureGroup,
    FeatureGroupError,
    FeatureInputs,
    GroupResult,
    Input,
)
from smp_platform.features.schema import (
    NON_NEGATIVE,
    OPTIONAL,
    OPTIONAL_NON_NEGATIVE,
    OPTIONAL_SIMILARITY,
    REQUIRED,
    SIMILARITY,
    UNIT_EMBEDDING,
    Dtype,
    Field,
    FieldKind,
    Rule,
    View,
)

__all__ = [
    "NON_NEGATIVE",
    "OPTIONAL",
    "OPTIONAL_NON_NEGATIVE",
    "OPTIONAL_SIMILARITY",
    "REQUIRED",
    "SIMILARITY",
    "UNIT_EMBEDDING",
    "AblationStage",
    "Dtype",
    "EncoderUnavailable",
    "FeatureGroup",
    "FeatureGroupError",
    "FeatureInputs",
    "Field",
    "FieldKind",
    "GroupResult",
    "Input",
    "Rule",
    "View",
]
