"""The ``held_back`` alert: a province over its quarantine share, as the validation result says."""
from __future__ import annotations

from datetime import datetime, timezone

from readiness.orchestration import alerts
from readiness.settings import load_settings
from support.webhook import RecordingWebhook

NOW = datetime(2026, 9, 21, 2, 0, tzinfo=timezone.utc)
HELD = {"province_code": "38", "events": 14, "quarantined": 8, "share": 0.5714, "max_share": 0.5,
        "events_held_back": 2}


def test_held_back_payload_names_each_province_its_counts_and_share(tmp_path):
    settings = load_settings(var_dir=tmp_path)
    payload = alerts.held_back_alert("2026Q3", [HELD], "readiness_period_pipeline", "manual__1", settings)
    assert {k: v for k, v in payload.items() if k != "sent_at"} == {
        "source": "readiness", "env": settings.env, "kind": "held_back",
        "summary": "2026Q3: 1 province(s) held back by the quality gate, 2 accepted report(s) not published: "
                   "province 38 (8 of 14 reports quarantined, 57% > 50%)",
        "period": "2026Q3", "provinces": [HELD], "events_held_back": 2,
        "dag_id": "readiness_period_pipeline", "run_id": "manual__1"}


def test_alert_held_back_posts_only_when_a_province_is_held(tmp_path):
    with RecordingWebhook() as hook:
        settings = load_settings(var_dir=tmp_path, webhook_url=hook.url)
        assert alerts.alert_held_back(settings, {"period_id": "2026Q3", "held_back_provinces": []}) is None
        assert alerts.alert_held_back(settings, {"period_id": "2026Q3"}) is None
        sent = alerts.alert_held_back(settings, {"period_id": "2026Q3", "held_back_provinces": [HELD]})
        assert sent == {"provinces": ["38"], "delivered": True}
        [body] = hook.bodies("held_back")
        assert (body["period"], body["provinces"], body["events_held_back"]) == ("2026Q3", [HELD], 2)
        assert len(hook.received) == 1
