"""Alerts: the shape of Twilio's Monitor API, for client.monitor.v1.alerts."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import current_sandbox, engine, list_url, urls
from taskrouter_sandbox.api.params import query
from taskrouter_sandbox.api.rendering import alert, fetched, list_body
from taskrouter_sandbox.domain.values import ALERT_LEVELS


def list_alerts() -> Response:
    params = query()
    paging = params.paging()
    result = engine().page_alerts(paging, log_level=params.choice("LogLevel", ALERT_LEVELS))
    base = urls().base
    records = [alert(row, current_sandbox().account_sid, base) for row in result.rows]
    return fetched(list_body("alerts", result, paging, records, list_url()))


def fetch_alert(sid: str) -> Response:
    return fetched(alert(engine().get_alert(sid), current_sandbox().account_sid, urls().base))
