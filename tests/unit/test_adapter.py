"""CLIP-Adapter: shapes, the residual ratio, and cross-fitting without label leakage."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from smp_platform.core.config import TrainSettings
from smp_platform.modeling.adapter import assign_folds, crossfit_transform, fit_adapter

DIM = 32


def _embeddings(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    direction = rng.normal(size=DIM)
    X = rng.normal(size=(n, DIM)) + 3.0 * signal[:, None] * direction / np.linalg.norm(direction)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = 2.0 + signal + 0.3 * rng.normal(size=n)
    return X.astype(np.float32), y


SETTINGS = TrainSettings(adapter_epochs=8, adapter_folds=3, adapter_ratio=0.5, seed=7)


def test_transform_keeps_shape_and_missing_rows() -> None:
    X, y = _embeddings(120)
    X[5] = np.nan
    adapter = fit_adapter(X, y, SETTINGS)
    adapted = adapter.transform(X)
    assert adapted.shape == X.shape
    assert adapted.dtype == np.float32
    assert np.isnan(adapted[5]).all()
    assert np.isfinite(np.delete(adapted, 5, axis=0)).all()
    assert not np.allclose(adapted[:5], X[:5])


def test_ratio_zero_is_identity() -> None:
    X, y = _embeddings(80)
    adapter = fit_adapter(X, y, SETTINGS.model_copy(update={"adapter_ratio": 0.0}))
    np.testing.assert_array_equal(adapter.transform(X), X)


def test_adapter_round_trips_through_pickle_and_is_seeded() -> None:
    X, y = _embeddings(100)
    adapter = fit_adapter(X, y, SETTINGS)
    restored = pickle.loads(pickle.dumps(adapter))
    np.testing.assert_array_equal(restored.transform(X), adapter.transform(X))
    assert set(adapter.state_dict()) == set(restored.state_dict())
    np.testing.assert_array_equal(fit_adapter(X, y, SETTINGS).transform(X), adapter.transform(X))


def test_numpy_inference_equals_the_torch_module() -> None:
    X, y = _embeddings(150)
    X[3] = np.nan
    adapter = fit_adapter(X, y, SETTINGS)
    numpy_out, torch_out = adapter.transform(X), adapter.transform_torch(X)
    assert numpy_out.dtype == torch_out.dtype == np.float32
    assert np.isnan(numpy_out[3]).all() and np.isnan(torch_out[3]).all()
    np.testing.assert_allclose(numpy_out, torch_out, rtol=1e-5, atol=1e-6)
    assert not np.allclose(numpy_out[:3], X[:3])


def test_a_fitted_adapter_predicts_without_torch() -> None:
    """The serving image has no torch: unpickling and transforming must not import it."""
    X, y = _embeddings(60)
    adapter = fit_adapter(X, y, SETTINGS)
    code = (
        "import pickle, sys\n"
        "import numpy as np\n"
        "sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"
        "adapter, X, expected = pickle.loads(sys.stdin.buffer.read())\n"
        "np.testing.assert_allclose(adapter.transform(X), expected, rtol=1e-6)\n"
        "print('ok')\n"
    )
    payload = pickle.dumps((adapter, X, adapter.transform(X)))
    result = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() == b"ok"


def test_folds_cover_every_row_exactly_once_and_keep_groups_together() -> None:
    order = np.repeat(np.arange(40), 3)  # 40 timestamps, 3 posts each
    folds = assign_folds(order, 5)
    assert folds.shape == order.shape
    held_out = np.stack([folds == f for f in range(5)])
    np.testing.assert_array_equal(held_out.sum(axis=0), np.ones(len(order)))
    assert all(held_out[f].any() for f in range(5))
    for value in np.unique(order):
        assert len(set(folds[order == value])) == 1
    # time order in, contiguous time blocks out
    assert (np.diff(folds) >= 0).all()


def test_folds_need_two_groups() -> None:
    with pytest.raises(ValueError, match="2 distinct"):
        assign_folds(np.zeros(10), 3)


def test_crossfit_never_uses_a_rows_own_label() -> None:
    X, y = _embeddings(150)
    order = np.arange(150)
    row = 17
    oof, final = crossfit_transform(X, y, order, SETTINGS.adapter_folds, SETTINGS)
    changed = y.copy()
    changed[row] += 25.0
    oof_changed, final_changed = crossfit_transform(
        X, changed, order, SETTINGS.adapter_folds, SETTINGS
    )

    np.testing.assert_array_equal(oof_changed[row], oof[row])
    # the in-sample adapter (used for new posts) does see the changed label
    assert not np.array_equal(
        final_changed.transform(X[row : row + 1]), final.transform(X[row : row + 1])
    )
    # and so do rows of the other folds, whose adapters trained on this row: the test can fail
    folds = assign_folds(order, SETTINGS.adapter_folds)
    other = folds != folds[row]
    assert not np.array_equal(oof_changed[other], oof[other])
    np.testing.assert_array_equal(oof_changed[~other], oof[~other])


def test_crossfit_leaves_missing_embeddings_missing_and_out_of_training() -> None:
    X, y = _embeddings(90)
    X[[3, 40]] = np.nan
    oof, final = crossfit_transform(X, y, np.arange(90), 3, SETTINGS)
    assert np.isnan(oof[[3, 40]]).all()
    assert np.isfinite(np.delete(oof, [3, 40], axis=0)).all()
    changed = y.copy()
    changed[3] += 25.0  # a row without an embedding trains nothing
    oof_changed, final_changed = crossfit_transform(X, changed, np.arange(90), 3, SETTINGS)
    np.testing.assert_array_equal(np.nan_to_num(oof_changed), np.nan_to_num(oof))
    np.testing.assert_array_equal(final_changed.transform(X[:10]), final.transform(X[:10]))
