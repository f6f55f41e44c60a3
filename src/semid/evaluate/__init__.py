"""Evaluation shared by every model: metrics on ranked lists, bootstrap CIs, results files."""
