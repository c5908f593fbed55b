"""schemathesis against the app's own OpenAPI schema: no input makes the API answer 500."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from energywatch.config import Settings


def test_no_server_errors(filled_store: Path) -> None:
    from energywatch.web.app import create_app

    # schemathesis's in-process client names itself "testserver"
    app = create_app(Settings(store=f"sqlite:///{filled_store}"), allowed_hosts=["testserver"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            response = case.call()
            assert response.status_code < 500, f"{case.method} {case.formatted_path} {case.query}: {response.text[:300]}"

        check()
        checked.append(operation.path)
    assert {"/api/search", "/api/documents/{doc_id}", "/api/feeds", "/api/stats", "/api/alerts"} <= set(checked)
