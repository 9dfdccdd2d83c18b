"""Stacking: penultimate features of the fold CNNs and an XGBoost head trained on them out of fold."""
