"""The wire contract's own rules (client_runtime/protocol.py), and its users reading them from there."""

from __future__ import annotations

import pytest

from client_runtime import protocol
from client_runtime.launcher import with_user_id


def test_a_user_id_carries_an_app_and_a_run_and_reads_back():
    user = protocol.user_id("etl.orders", "r-1:2")
    assert user == "router:etl.orders:r-1:2"
    assert protocol.attribution_of_user_id(user) == ("etl.orders", "r-1:2")
    assert protocol.attribution_of_user_id(with_user_id("sc://h:1", user).rsplit("user_id=", 1)[1]) == (
        "etl.orders", "r-1:2")


@pytest.mark.parametrize("user", [None, "", "alice", "router:", "router:etl", "router::r1", "router:etl:",
                                  "router:etl x:r1", "router:etl:r\x001", "router:" + "a" * 201 + ":r1",
                                  "router:etl:" + "r" * 101])
def test_what_is_not_such_a_user_id_attributes_nothing(user):
    assert protocol.attribution_of_user_id(user) is None


def test_the_rule_of_ids():
    assert protocol.is_id("etl.orders/v2@team:x-1_y", protocol.APP_ID_MAX)
    for bad in ("", " ", "a b", "a\nb", "é", "a" * 201):
        assert not protocol.is_id(bad, protocol.APP_ID_MAX)


def test_a_rerun_settles_every_end_of_a_run():
    assert set(protocol.SETTLED_BY) == {"succeeded", "failed", "cancelled"}
    assert protocol.SETTLED_BY["succeeded"] == "connect" and protocol.SETTLED_BY["failed"] == "app"


def test_resources_leave_out_what_is_unset_and_name_what_spark_submit_takes():
    assert protocol.resources(executor_memory="2g", num_executors=0) == {"executor_memory": "2g",
                                                                         "num_executors": 0}
    assert protocol.RESOURCE_NAMES == ("driver_memory", "executor_memory", "driver_cores", "executor_cores",
                                       "num_executors")


def test_a_decision_answer_is_typed_and_keeps_what_the_router_sent():
    sent = {"run_id": "r1", "app_id": "etl.a", "mode": "connect", "rule": "default",
            "reasons": [{"rule": "default", "metric": None, "observed": None, "threshold": None,
                         "message": "why"}],
            "connect_url": "sc://h:15002", "server_id": "s1",
            "session_confs": protocol.session_confs("etl.a", "r1"), "policy_version": "p1",
            "decided_at": "2026-12-04T19:00:00Z", "dry_run": False, "added_later": 1}
    answer = protocol.DecisionAnswer.from_json(sent)
    assert answer.mode == "connect" and answer.reasons[0].message == "why" and answer.server_id == "s1"
    assert answer.session_confs == {"spark.router.appId": "etl.a", "spark.router.runId": "r1"}
    assert answer.raw is sent


def test_a_runs_airflow_task_instance_is_named_by_session_confs_the_unknown_ones_left_out():
    assert protocol.airflow_confs("etl", "orders", "scheduled__2026-11-22", 1) == {
        "spark.router.airflow.dagId": "etl", "spark.router.airflow.taskId": "orders",
        "spark.router.airflow.runId": "scheduled__2026-11-22", "spark.router.airflow.tryNumber": "1"}
    assert protocol.airflow_confs("etl", None, None, None) == {"spark.router.airflow.dagId": "etl"}


def test_what_the_launcher_tells_the_session_helper_is_read_by_the_protocols_names(monkeypatch):
    from client_runtime import session

    monkeypatch.setenv(protocol.MODE_ENV, "connect")
    monkeypatch.setenv(protocol.SESSION_CONFS_ENV, '{"spark.router.appId": "etl.a"}')
    assert session.mode() == "connect"
    assert session.session_confs() == {"spark.router.appId": "etl.a"}
    assert (protocol.MODE_ENV, protocol.SESSION_CONFS_ENV, protocol.ARTIFACTS_ENV) == (
        "SPARK_ROUTER_MODE", "SPARK_ROUTER_SESSION_CONFS", "SPARK_ROUTER_ARTIFACTS")


def test_no_python_module_spells_the_session_helpers_environment_again():
    """The launcher, the session helper and the operator name it through the protocol's constants only."""
    from tests.support import REPO

    names = [f'"{getattr(protocol, name)}"' for name in ("MODE_ENV", "SESSION_CONFS_ENV", "ARTIFACTS_ENV")]
    modules = [path for folder in ("client_runtime", "airflow_plugins", "service")
               for path in (REPO / folder).rglob("*.py") if path.name != "protocol.py"]
    assert len(modules) > 20
    spelled = [(path.name, name) for path in modules for name in names if name in path.read_text()]
    assert spelled == []
