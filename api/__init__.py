"""The HTTP service (`verifier serve`): FastAPI app, API keys and roles, limits, metrics, jobs, reviewer page."""
