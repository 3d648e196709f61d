"""Metrics of the SMP Challenge: Spearman rank correlation (SRC) and MAE, plus MSE/RMSE."""

from __future__ import annotations

from typing import Any

import numpy as np


def metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``src`` (Spearman), ``mae``, ``mse``, ``rmse`` and ``n`` over rows with a finite label.

    A constant prediction has no ranking information: its SRC is reported as 0.0, not NaN.
    """
    from scipy.stats import spearmanr

    truth = np.asarray(y_true, dtype=np.float64)
    prediction = np.asarray(y_pred, dtype=np.float64)
    if truth.shape != prediction.shape:
        raise ValueError(f"{truth.shape} labels but {prediction.shape} predictions")
    keep = np.isfinite(truth) & np.isfinite(prediction)
    truth, prediction = truth[keep], prediction[keep]
    if len(truth) == 0:
        raise ValueError("no rows with a finite label and prediction to evaluate")
    error = prediction - truth
    if len(truth) > 1 and np.ptp(prediction) > 0 and np.ptp(truth) > 0:
        src = float(spearmanr(truth, prediction).statistic)
    else:
        src = 0.0
    mse = float(np.mean(error**2))
    return {
        "src": src,
        "mae": float(np.mean(np.abs(error))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "n": float(len(truth)),
    }


def baseline_metrics(y_true: Any, train_median: float) -> dict[str, float]:
    """Metrics of predicting the training median for every post."""
    truth = np.asarray(y_true, dtype=np.float64)
    return metrics(truth, np.full_like(truth, train_median))


def with_baseline(y_true: Any, y_pred: Any, train_median: float) -> dict[str, float]:
    """Model metrics plus ``baseline_*`` (training median) for the same rows."""
    result = metrics(y_true, y_pred)
    result.update(
        {f"baseline_{k}": v for k, v in baseline_metrics(y_true, train_median).items() if k != "n"}
    )
    return result
