"""Reference implementation of the platform API v1 (docs/api.md) on FastAPI and SQLite.

Serves the service catalogue, takes idempotent submissions, tracks their status over real HTTP.
"""
