"""Staged pipelines: `pipelines/*.yaml` configs (config.py) and `entitylabel run` (runner.py)."""
