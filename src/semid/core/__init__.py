"""The bottom layer: errors, typed configs, artifacts on disk, the run folder, threads, logging, figures."""
