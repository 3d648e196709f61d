"""Modeling, pure and named by nouns: the CLIP-Adapter, the model matrix (``FeatureSpec``:
columns by kind), the CatBoost fit, the recipe, terms, drift profiles (``psi``), metrics,
figures, the ablation, the recipe search, the promotion rule and the registered ``pyfunc``.
Nothing here reads a store or knows a feature group's name.

Submodules import their heavy dependencies (torch, catboost, mlflow, matplotlib) themselves;
importing this package is cheap.
"""
