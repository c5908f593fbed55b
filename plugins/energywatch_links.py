"""Airflow plugin: links from the Airflow UI to the energywatch search UI and the Kibana dashboard."""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin

SEARCH_UI_URL = os.environ.get("ENERGYWATCH_SEARCH_UI_URL", "http://localhost:8000").rstrip("/")
KIBANA_URL = os.environ.get("ENERGYWATCH_KIBANA_URL", "http://localhost:5601").rstrip("/")


class EnergywatchLinksPlugin(AirflowPlugin):
    """Adds "energywatch search" and "Kibana dashboard" to the Airflow navigation.

    No `url_route`: with one, Airflow shows the page in an iframe, which the search UI refuses
    (`frame-ancestors 'none'`, against clickjacking); without, the link opens in a new tab.
    """

    name = "energywatch_links"
    external_views = [
        {"name": "energywatch search", "href": SEARCH_UI_URL, "destination": "nav", "category": "browse"},
        {"name": "Kibana: energy-security overview",
         "href": f"{KIBANA_URL}/app/dashboards#/view/energywatch-overview", "destination": "nav",
         "category": "browse"},
    ]
