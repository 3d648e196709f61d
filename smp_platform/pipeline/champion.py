"""The champion verbs: who holds ``@champion`` and since when (:func:`champion_status`), every
move of the alias (:func:`champion_history`), and the moves a person makes by hand
(:func:`set_champion`, :func:`rollback_champion`).

A promotion moves the alias when a candidate's recipe wins on the same posts
(:mod:`smp_platform.pipeline.promote`). A person moves it when the champion misbehaves in a way
no backtest shows (a bad release, a complaint about its predictions) and must say why. Each
move is a run in MLflow like a promotion's, so the history is read from MLflow alone (nothing
local can disagree with the registry the service follows), and the version it moved to is
tagged ``champion_since``. The service follows any move within a poll.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.infra.mlflow_registry import CHAMPION_SINCE_TAG, ChampionMove, ModelRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChampionStatus:
    """What ``smp champion show`` prints."""

    model_name: str
    version: str
    feature_service: str
    since: datetime | None  # None: the alias was moved outside smp and never tagged
    move: ChampionMove | None  # the logged move that made it champion, if smp made it
    metrics: dict[str, float]  # its recorded backtest
    validation: str  # the posts the metrics are on

    def __str__(self) -> str:
        since = _utc_text(self.since) if self.since else "unknown (moved outside smp)"
        move = self.move
        how = f" by {move.kind} from {_v(move.from_version)}" if move else ""
        return "\n".join(
            [
                f"@champion of {self.model_name}: version {self.version} "
                f"(feature service {self.feature_service})",
                f"since: {since}{how}",
                f"reason: {move.reason if move else 'not logged (moved outside smp)'}",
                f"metrics: {_scores(self.metrics)}, median baseline MAE "
                f"{self.metrics.get('baseline_mae', float('nan')):.3f} ({self.validation})",
            ]
        )


def champion_status(settings: Settings) -> ChampionStatus:
    """The champion, the move that made it champion and its recorded quality."""
    registry = ModelRegistry(settings)
    version, feature_service = registry.require_champion()
    tags = registry.tags(version)
    move = next((m for m in registry.champion_moves() if m.to_version == version), None)
    stamp = tags.get(CHAMPION_SINCE_TAG)
    since = datetime.fromisoformat(stamp) if stamp else (move.at if move else None)
    validation = (
        f"backtest on {tags['validation_n']} posts, "
        f"{tags['validation_start']} .. {tags['validation_end']}"
        if {"validation_n", "validation_start", "validation_end"} <= set(tags)
        else "no validation window recorded"
    )
    return ChampionStatus(
        model_name=registry.name,
        version=version,
        feature_service=feature_service,
        since=since,
        move=move,
        metrics=registry.recorded_metrics(version),
        validation=validation,
    )


def champion_history(settings: Settings) -> list[ChampionMove]:
    """Every logged move of ``@champion``, newest first."""
    return ModelRegistry(settings).champion_moves()


def set_champion(settings: Settings, version: str, reason: str) -> ChampionMove:
    """Move ``@champion`` to ``version`` by hand, whatever the metrics say; logged with why."""
    return _move(ModelRegistry(settings), version, reason, "set")


def rollback_champion(settings: Settings, reason: str) -> ChampionMove:
    """Move ``@champion`` back to the version that held it before the current one."""
    registry = ModelRegistry(settings)
    current, _ = registry.require_champion()
    return _move(registry, previous_holder(registry.champion_moves(), current), reason, "rollback")


def previous_holder(moves: Sequence[ChampionMove], current: str) -> str:
    """The version the newest logged move to ``current`` moved the alias away from."""
    move = next((m for m in moves if m.to_version == current), None)
    if move is None:
        raise UserError(
            f"no logged move made version {current} champion (was the alias moved outside "
            "smp?), so there is nothing to roll back to: name the version with "
            "`smp champion set VERSION --reason ...`"
        )
    if move.from_version is None:
        raise UserError(
            f"version {current} is the first champion: no version held @champion before it, "
            "so there is nothing to roll back to"
        )
    return move.from_version


def _move(registry: ModelRegistry, version: str, reason: str, kind: str) -> ChampionMove:
    reason = reason.strip()
    if not reason:
        raise UserError(f"say why @champion moves: `--reason TEXT` (logged with the {kind})")
    target = str(registry.require_version(version).version)
    current = registry.champion()
    before = current[0] if current else None
    if before == target:
        raise UserError(f"version {target} already holds @champion of {registry.name}")
    at = registry.set_champion(target)
    move = registry.record_champion_move(kind, target, before, reason, at)
    log.info("%s @champion: %s -> %s: %s", kind, _v(before), _v(target), reason)
    return move


def history_text(moves: Sequence[ChampionMove], model_name: str) -> str:
    """``smp champion history``: three lines a move, newest first."""
    if not moves:
        return f"no move of @champion of {model_name} is logged yet (`smp promote` makes one)"
    return "\n".join(line for move in moves for line in move_lines(move))


def move_lines(move: ChampionMove) -> list[str]:
    """When, what, from and to; why; and the scores the record holds."""
    to, before = _v(move.to_version), _v(move.from_version)
    if move.kind == "promotion":
        how = "on the same posts, the candidate's backtest split"
    else:
        how = "each version's own recorded backtest"
    scores = f"{to} {_scores(move.to_metrics)}"
    if move.from_version is not None:
        scores += f"; {before} {_scores(move.from_metrics)} ({how})"
    else:
        scores += " (its backtest)"
    return [
        f"{_utc_text(move.at)}  {move.kind:<9}  {before} -> {to}",
        f"    reason: {move.reason}",
        f"    scores: {scores}",
    ]


def move_summary(move: ChampionMove) -> str:
    return f"@champion {_v(move.from_version)} -> {_v(move.to_version)} at {_utc_text(move.at)}"


def _v(version: str | None) -> str:
    return f"v{version}" if version is not None else "(none)"


def _scores(metrics: dict[str, float]) -> str:
    if not {"src", "mae"} <= set(metrics):
        return "no scores logged"
    return f"SRC {metrics['src']:.3f}, MAE {metrics['mae']:.3f}"


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
