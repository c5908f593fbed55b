"""The search and monitoring web UI (FastAPI, server-rendered) and its JSON API."""
