"""Feast's file registry, written by atomic replace (the embedded default's registry store).

Feast 0.67's ``FileRegistryStore`` rewrites ``registry.db`` in place (open "wb", write), so a
service reading it while ``apply`` or ``materialize`` writes can read a truncated proto. This
store writes a sibling file and renames it over the registry: a reader sees the old registry or
the new one, whole. Feast imports it by name (``registry_store_type`` in the store's config).
"""

from __future__ import annotations

import os
import uuid

from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.utils import _utc_now


class AtomicFileRegistryStore(FileRegistryStore):
    """A file registry store whose every write is a whole-file atomic replace."""

    def _write_registry(self, registry_proto: RegistryProto) -> None:
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        path = self._filepath
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            with open(partial, mode="wb", buffering=0) as f:
                f.write(registry_proto.SerializeToString())
                os.fsync(f.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
