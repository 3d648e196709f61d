"""Modeling: CLIP-Adapter, model matrix, CatBoost training, evaluation, MLflow registry.

Submodules import their heavy dependencies (torch, catboost, mlflow, matplotlib) themselves;
importing this package is cheap.
"""
