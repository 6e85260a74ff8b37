"""The metrics endpoint: Prometheus text, liveness, readiness from the daemon's checks."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from inboxd.metrics import (
    HEALTH,
    MAIL_INGESTED,
    REGISTRY,
    MetricsServer,
    QueueCollector,
)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_health_and_readiness() -> None:
    state = {"mailboxes": "not connected: support"}
    server = MetricsServer(
        "127.0.0.1", 0, {"database": lambda: None, "mailboxes": lambda: state["mailboxes"]}
    ).start()
    server.collector = QueueCollector(lambda: [("outbox", "ack", 3, 300.0)])
    REGISTRY.register(server.collector)
    port = server.server_port
    try:
        MAIL_INGESTED.labels("support", "stored").inc()
        status, text = get(port, "/metrics")
        assert status == 200
        assert 'inboxd_mail_ingested_total{mailbox="support",result="stored"}' in text
        assert 'inboxd_queue_depth{kind="ack",queue="outbox"} 3.0' in text
        assert 'inboxd_queue_oldest_age_seconds{kind="ack",queue="outbox"} 300.0' in text
        assert get(port, "/healthz") == (200, "ok\n")
        status, body = get(port, "/readyz")
        assert status == 503
        assert json.loads(body) == {
            "ready": False,
            "problems": {"mailboxes": "not connected: support"},
        }
        state["mailboxes"] = None
        assert get(port, "/readyz")[0] == 200
        assert get(port, "/nothing")[0] == 404
    finally:
        server.stop()


def test_mailbox_health_feeds_the_gauges_and_readiness() -> None:
    HEALTH.down("box-a", "connection refused")
    assert HEALTH.not_connected(["box-a"]) == ["box-a"]
    HEALTH.synced("box-a", 1_700_000_000.0)
    assert HEALTH.not_connected(["box-a"]) == []
    text = get_metrics_text()
    assert 'inboxd_mailbox_connected{mailbox="box-a"} 1.0' in text
    assert 'inboxd_mailbox_last_sync_timestamp_seconds{mailbox="box-a"} 1.7e+09' in text


def get_metrics_text() -> str:
    from prometheus_client import generate_latest

    return generate_latest(REGISTRY).decode()
