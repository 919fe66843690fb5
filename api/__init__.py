"""HTTP service (FastAPI); filled in by the API issue."""
