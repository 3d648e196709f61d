"""The registry of feature groups: the built-in ones plus those the ``feature_groups`` setting
names, checked when loaded, and the feature services derived from them.

A group is named ``"module:attribute"`` (``"my_team.features.language:group"``) or
``"/path/to/file.py:attribute"`` for a file outside any package; the attribute is a
:class:`~smp_platform.features.group.FeatureGroup`. ``SMP_FEATURE_GROUPS='["my.mod:group"]'``
sets it from the environment. A misdeclared group (a duplicate name, an unknown dtype, a field
named like a key) raises :class:`~smp_platform.features.group.FeatureGroupError` naming the
group and the field, when the registry is first built: at the start of any command.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smp_platform.features.group import FeatureGroup, FeatureGroupError, Input
from smp_platform.features.schema import RESERVED_NAMES, Dtype, Field, FieldKind, Rule, View

if TYPE_CHECKING:
    from smp_platform.core.config import Settings

# The platform's own groups, loaded like any other (each is one file under features/groups/).
BUILTIN_GROUPS = (
    "smp_platform.features.groups.tabular:group",
    "smp_platform.features.groups.text:group",
    "smp_platform.features.groups.image:group",
    "smp_platform.features.groups.perplexity:group",
)
# A feature service of every registered view: a group that stays out of the default service
# is still available by this name.
ALL_FEATURE_SERVICE = "popularity_all_v1"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Projection:
    view: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class ServiceSpec:
    """A feature service: the contract between a model family's training and its serving."""

    name: str
    description: str
    projections: tuple[Projection, ...]

    @property
    def columns(self) -> list[str]:
        """The served feature columns, in a stable order."""
        return [name for p in self.projections for name in p.features]

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(p.view for p in self.projections)


class FeatureGroups:
    """The registered groups, their views and fields, and the feature services they join."""

    def __init__(self, groups: Sequence[FeatureGroup]) -> None:
        self.groups: tuple[FeatureGroup, ...] = tuple(_checked_all(groups))
        self.views: tuple[View, ...] = tuple(v for g in self.groups for v in g.views)
        self._group: dict[str, FeatureGroup] = {g.name: g for g in self.groups}
        self._view: dict[str, View] = {v.name: v for v in self.views}
        self._group_of_view: dict[str, FeatureGroup] = {
            v.name: g for g in self.groups for v in g.views
        }
        self.fields: dict[str, Field] = {f.name: f for v in self.views for f in v.fields}
        # The view each feature belongs to (names are unique across views).
        self.view_of: dict[str, str] = {f.name: v.name for v in self.views for f in v.fields}
        self.services: dict[str, ServiceSpec] = _services(self.groups)

    def __iter__(self) -> Any:
        return iter(self.groups)

    def group(self, name: str) -> FeatureGroup:
        if name not in self._group:
            raise KeyError(f"unknown feature group {name!r}; known: {', '.join(self._group)}")
        return self._group[name]

    def view(self, name: str) -> View:
        if name not in self._view:
            raise KeyError(f"unknown feature view {name!r}; known: {', '.join(self._view)}")
        return self._view[name]

    def group_of(self, view_name: str) -> FeatureGroup:
        return self._group_of_view[view_name]

    def service(self, name: str) -> ServiceSpec:
        """The named feature service; a :class:`UserError` naming the known ones otherwise."""
        if name not in self.services:
            raise FeatureGroupError(
                f"unknown feature service {name!r}; known: {', '.join(self.services)}"
            )
        return self.services[name]

    def groups_of_columns(self, columns: Iterable[str]) -> list[FeatureGroup]:
        """The groups whose views hold any of ``columns``, in registry order."""
        views = {self.view_of[c] for c in columns if c in self.view_of}
        return [g for g in self.groups if any(v.name in views for v in g.views)]

    @property
    def request_time(self) -> list[FeatureGroup]:
        """Groups a post's own fields compute at request time (drafts, pushed posts)."""
        return [g for g in self.groups if g.request_time]

    def embedding_columns(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.dtype.is_array]

    def declaration(self) -> list[dict[str, Any]]:
        """Everything Feast's objects are built from, as JSON-able data (the fingerprint of
        what ``apply`` registered)."""
        return [
            {
                "group": g.name,
                "request_time": g.request_time,
                "services": list(g.services),
                "views": [dataclasses.asdict(v) for v in g.views],
            }
            for g in self.groups
        ]


def groups_for(settings: Settings) -> FeatureGroups:
    """The built-in groups and those ``settings.feature_groups`` names (built once per list)."""
    return _registry(tuple(settings.feature_groups))


@functools.lru_cache(maxsize=8)
def _registry(extra: tuple[str, ...]) -> FeatureGroups:
    return FeatureGroups([load_group(spec) for spec in (*BUILTIN_GROUPS, *extra)])


def load_group(spec: str) -> FeatureGroup:
    """The group a ``"module:attribute"`` or ``"/path/file.py:attribute"`` names."""
    module_name, sep, attribute = str(spec).strip().rpartition(":")
    if not sep or not module_name or not attribute:
        raise FeatureGroupError(
            f"feature group {spec!r}: expected 'module:attribute' (or '/path/file.py:attribute')"
        )
    try:
        module = _import(module_name)
    except (ImportError, OSError) as error:
        raise FeatureGroupError(f"feature group {spec!r}: cannot import it: {error}") from error
    group = getattr(module, attribute, None)
    if not isinstance(group, FeatureGroup):
        raise FeatureGroupError(
            f"feature group {spec!r}: {attribute!r} is a {type(group).__name__}, "
            "not a smp_platform.features.FeatureGroup"
        )
    return dataclasses.replace(group, source=str(spec))


def _import(module_name: str) -> Any:
    if not module_name.endswith(".py"):
        return importlib.import_module(module_name)
    path = Path(module_name).expanduser().resolve()
    name = f"smp_feature_group_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no Python file at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- checks ------------------------------------------------------------------------------------
def _checked_all(groups: Sequence[FeatureGroup]) -> list[FeatureGroup]:
    out: list[FeatureGroup] = []
    views: dict[str, str] = {}  # view name -> group
    fields: dict[str, str] = {}  # field name -> "view of group"
    for group in groups:
        checked = _checked(group)
        if any(g.name == checked.name for g in out):
            raise FeatureGroupError(f"{checked.describe()}: the name is already registered")
        for view in checked.views:
            if view.name in views:
                raise FeatureGroupError(
                    f"{checked.describe()}: view {view.name!r} is already declared by "
                    f"group {views[view.name]!r}"
                )
            views[view.name] = checked.name
            for f in view.fields:
                if f.name in fields:
                    raise FeatureGroupError(
                        f"{checked.describe()}: field {f.name!r} of view {view.name!r} is "
                        f"already declared by {fields[f.name]} (field names are unique)"
                    )
                fields[f.name] = f"view {view.name!r} of group {checked.name!r}"
        out.append(checked)
    return out


def _checked(group: FeatureGroup) -> FeatureGroup:
    """The group with its declarations checked, and strings made enums (``dtype="float64"``)."""
    where = group.describe()
    if not isinstance(group.name, str) or not _NAME.fullmatch(group.name):
        raise FeatureGroupError(f"{where}: the name must be lower case letters, digits and _")
    if not callable(group.compute):
        raise FeatureGroupError(f"{where}: compute is not callable")
    for hook in ("identity", "load"):
        if getattr(group, hook) is not None and not callable(getattr(group, hook)):
            raise FeatureGroupError(f"{where}: {hook} is not callable")
    if not group.views:
        raise FeatureGroupError(f"{where}: declares no view")
    reads = frozenset(_enum(Input, r, f"{where}: reads") for r in group.reads)
    views = tuple(_checked_view(where, v) for v in group.views)
    services = tuple(group.services)
    if not all(isinstance(s, str) and s for s in services):
        raise FeatureGroupError(f"{where}: services must be feature service names")
    checked = dataclasses.replace(group, views=views, reads=reads, services=services)
    names = set(checked.feature_names)
    embeddings = {f.name for f in checked.fields if f.dtype.is_array}
    for stage in checked.stages():
        for name in stage.features or ():
            if name not in names:
                raise FeatureGroupError(f"{where}: ablation stage {stage.label!r} names {name!r}")
        for name in stage.adapt:
            if name not in embeddings:
                raise FeatureGroupError(
                    f"{where}: ablation stage {stage.label!r} adapts {name!r}, not an embedding"
                )
    return checked


def _checked_view(where: str, view: View) -> View:
    if not isinstance(view, View):
        raise FeatureGroupError(f"{where}: {view!r} is not a smp_platform.features.View")
    if not _NAME.fullmatch(view.name):
        raise FeatureGroupError(f"{where}: view {view.name!r}: lower case letters, digits, _")
    if not view.fields:
        raise FeatureGroupError(f"{where}: view {view.name!r} declares no field")
    fields = []
    for f in view.fields:
        at = f"{where}: field {getattr(f, 'name', f)!r} of view {view.name!r}"
        if not isinstance(f, Field):
            raise FeatureGroupError(f"{at} is not a smp_platform.features.Field")
        if not _NAME.fullmatch(f.name):
            raise FeatureGroupError(f"{at}: the name must be lower case letters, digits and _")
        if f.name in RESERVED_NAMES:
            raise FeatureGroupError(f"{at}: the name is reserved for the row's keys")
        if not isinstance(f.rule, Rule):
            raise FeatureGroupError(f"{at}: rule must be a smp_platform.features.Rule")
        dtype = _enum(Dtype, f.dtype, f"{at}: dtype")
        kind = None if f.kind is None else _enum(FieldKind, f.kind, f"{at}: kind")
        if kind is FieldKind.TERMS and dtype is not Dtype.STRING:
            raise FeatureGroupError(f"{at}: a terms field must be a string")
        fields.append(dataclasses.replace(f, dtype=dtype, kind=kind))
    return dataclasses.replace(view, fields=tuple(fields), tags=dict(view.tags))


def _enum(cls: Any, value: Any, where: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        known = ", ".join(str(member.value) for member in cls)
        raise FeatureGroupError(f"{where} {value!r} is unknown; known: {known}") from None


def _services(groups: Sequence[FeatureGroup]) -> dict[str, ServiceSpec]:
    names = list(dict.fromkeys(s for g in groups for s in g.services))
    names.append(ALL_FEATURE_SERVICE)
    out = {}
    for name in names:
        members = [g for g in groups if name == ALL_FEATURE_SERVICE or name in g.services]
        projections = tuple(
            Projection(v.name, tuple(v.feature_names)) for g in members for v in g.views
        )
        what = "every registered view" if name == ALL_FEATURE_SERVICE else f"the {name} family"
        out[name] = ServiceSpec(name, f"Features of {what}", projections)
    return out
