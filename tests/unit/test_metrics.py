"""GET /metrics text (agent/ops/metrics.py)."""

from __future__ import annotations

from types import SimpleNamespace

from agent.ops import metrics


def test_labels_are_escaped_and_each_metric_declared_once() -> None:
    services = SimpleNamespace(started=0.0)
    status = {
        "connections": [
            {
                "name": 'odd"peer\\\n',
                "database_sockets": [
                    {"database": "dev", "connected": True, "gaps": 2, "behind": []},
                    {"database": "ops", "connected": False, "gaps": 0, "behind": None},
                ],
            }
        ],
        "origins": {"dev": [{"origin": "n3", "unserved": True}]},
        "antiEntropy": {"checks": 4, "repairedRows": 1},
        "verify": None,
    }
    text = metrics.render(services, status)
    assert 'harper_replication_connected{peer="odd\\"peer\\\\\\n",database="dev"} 1' in text
    assert text.count("# TYPE harper_replication_connected gauge") == 1
    assert 'harper_replication_origin_unserved{database="dev",origin="n3"} 1' in text
    assert "harper_verify_checks_total 4" in text and "harper_verify_bytes_total 0" in text
    assert "harper_verify_last_agreed" not in text
    assert text.endswith("\n")


def test_without_replication_only_the_process() -> None:
    text = metrics.render(SimpleNamespace(started=0.0), None)
    assert "harper_up 1" in text and "replication" not in text
