"""API routers, one per area; each is thin: authorise, validate, call the library, shape the answer."""
