"""`peftlab serve`: fine-tuning as a service over HTTP (FastAPI), on the same engine calls."""
