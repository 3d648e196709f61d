"""The request-time path outside the service: drafts and fresh posts from a user's JSON files,
for ``smp score``, ``smp ingest --push`` and ``smp report --draft``. A file a user can fix raises
:class:`~smp_platform.core.errors.UserError` saying what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.infra.feast_store import FeatureStoreGateway
from smp_platform.infra.mlflow_registry import ModelRegistry
from smp_platform.online.authors import AuthorIndex
from smp_platform.online.push import PostConflict, PushResult, parse_pushed_post, push_post
from smp_platform.online.scorer import Scorer
from smp_platform.online.scoring import DraftScoringUnavailable, score_draft
from smp_platform.sources import parse_draft
from smp_platform.sources.draft import Draft, DraftError


def read_json_file(path: Path, what: str) -> Any:
    """The JSON value of a file a user names (``what``: "draft", "post"); a missing or unreadable
    file raises :class:`UserError` saying which."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no {what} file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not a JSON {what}: {error}") from None


def read_draft_file(path: Path) -> Draft:
    """A draft from a JSON file."""
    body = read_json_file(path, "draft")
    if not isinstance(body, dict):
        raise UserError(f"{path} holds a JSON {type(body).__name__}, expected a draft object")
    try:
        return parse_draft(body)
    except DraftError as error:
        raise UserError(f"invalid draft in {path}: {error}") from None


def read_pushed_posts(path: Path) -> list[Draft]:
    """The posts of a JSON file: one ``POST /v1/posts`` body, or a list of them. Every post is
    checked before any is written."""
    body = read_json_file(path, "post")
    bodies = body if isinstance(body, list) else [body]
    drafts = []
    for i, item in enumerate(bodies):
        where = f"{path}" if not isinstance(body, list) else f"{path} item {i}"
        if not isinstance(item, dict):
            raise UserError(f"{where} is a JSON {type(item).__name__}, expected a post object")
        try:
            drafts.append(parse_pushed_post(item))
        except DraftError as error:
            raise UserError(f"invalid post in {where}: {error}") from None
    return drafts


def score_file(
    settings: Settings, path: Path, *, explain: bool = False, best_time: bool = False
) -> dict[str, Any]:
    """The service's answer for a draft file, computed in this process (``smp score``)."""
    draft = read_draft_file(path)
    registry = ModelRegistry(settings)
    version, _ = registry.require_champion()
    model, _ = registry.load_with_columns(version)
    scorer = Scorer(model.unwrap_python_model())
    authors = (
        AuthorIndex.from_warehouse(settings.warehouse_path)
        if settings.warehouse_path.exists()
        else AuthorIndex()
    )
    try:
        result = score_draft(draft, scorer, authors, settings, explain=explain, best_time=best_time)
    except DraftScoringUnavailable as error:
        raise UserError(str(error)) from None
    return {**result.body(), "model_name": settings.train.model_name, "model_version": version}


def push_file(settings: Settings, path: Path) -> list[PushResult]:
    """``smp ingest --push``: every post of the file stored and pushed (caller holds the lock).
    A conflicting post stops the run (the ones before it are stored) with a UserError."""
    drafts = read_pushed_posts(path)
    gateway = FeatureStoreGateway(settings)  # one Feast store for the file, not one per post
    results = []
    for draft in drafts:
        try:
            results.append(push_post(settings, draft, source=str(path), gateway=gateway))
        except PostConflict as error:
            raise UserError(str(error)) from None
    return results
