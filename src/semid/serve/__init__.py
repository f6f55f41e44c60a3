"""Use a finished run: :func:`semid.serve.api.load` (the Python API, also ``semid.load``), ``semid
recommend`` and ``semid serve`` (a FastAPI service and its page, :mod:`semid.serve.app`)."""
