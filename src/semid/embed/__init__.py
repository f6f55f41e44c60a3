"""Item embeddings: a sentence encoder over the prepared item texts (``semid embed``)."""
