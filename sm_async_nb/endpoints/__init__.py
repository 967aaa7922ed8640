"""Endpoint awareness (SPEC §10): what an endpoint is doing to the requests waiting on it."""
