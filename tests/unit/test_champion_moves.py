"""The champion verbs' pure parts: which version a rollback returns to, and how a move reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smp_platform.core.errors import UserError
from smp_platform.infra.mlflow_registry import ChampionMove
from smp_platform.pipeline.champion import history_text, move_lines, previous_holder


def _move(at_hour: int, kind: str, before: str | None, to: str, **metrics: float) -> ChampionMove:
    def prefixed(prefix: str) -> dict[str, float]:
        return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}

    return ChampionMove(
        at=datetime(2024, 5, 1, at_hour, tzinfo=UTC),
        kind=kind,
        from_version=before,
        to_version=to,
        reason=f"{kind} at {at_hour}",
        to_metrics=prefixed("to_"),
        from_metrics=prefixed("from_"),
    )


# newest first, as the registry returns them: v1 promoted, v2 promoted over it, v3 set by hand
MOVES = [
    _move(12, "set", "2", "3"),
    _move(11, "promotion", "1", "2"),
    _move(10, "promotion", None, "1"),
]


def test_a_rollback_returns_to_the_version_the_newest_move_to_the_champion_left() -> None:
    assert previous_holder(MOVES, "3") == "2"
    assert previous_holder(MOVES, "2") == "1"
    # after a rollback 3 -> 2, the newest move to 2 is the rollback: rolling back again is 3
    rolled = [_move(13, "rollback", "3", "2"), *MOVES]
    assert previous_holder(rolled, "2") == "3"


def test_a_rollback_of_the_first_champion_or_of_an_unlogged_move_says_why() -> None:
    with pytest.raises(UserError, match="first champion"):
        previous_holder(MOVES, "1")
    with pytest.raises(UserError, match="moved outside smp"):
        previous_holder(MOVES, "7")
    assert UserError.exit_code == 2


def test_a_move_reads_when_what_why_and_both_scores() -> None:
    move = _move(9, "rollback", "4", "3", to_src=0.71234, to_mae=1.4, from_src=0.6, from_mae=1.5)
    when, why, scores = move_lines(move)
    assert when.startswith("2024-05-01 09:00:00 UTC  rollback") and when.endswith("v4 -> v3")
    assert why == "    reason: rollback at 9"
    assert "v3 SRC 0.712, MAE 1.400; v4 SRC 0.600, MAE 1.500" in scores
    first = move_lines(_move(8, "promotion", None, "1", to_src=0.5, to_mae=2.0))
    assert first[0].endswith("(none) -> v1") and first[2].endswith("(its backtest)")
    assert "no scores logged" in move_lines(_move(8, "set", "1", "2"))[2]


def test_history_keeps_the_order_it_is_given_and_says_when_there_is_none() -> None:
    text = history_text(MOVES, "m").splitlines()
    assert [line.split("  ")[1].strip() for line in text[::3]] == ["set", "promotion", "promotion"]
    assert "no move of @champion of m is logged yet" in history_text([], "m")
