"""Spark Connect Router for Airflow 3: ``SparkRouterOperator`` runs a Spark app where the router decides,
``SparkRouterHook`` owns the ``spark_router`` connection type. Needs the ``airflow`` extra
(``pip install 'spark-connect-router[airflow,client]'``); importing this package itself does not import
Airflow.

    from airflow_plugins import SparkRouterOperator
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_plugins import connections

if TYPE_CHECKING:
    from airflow_plugins.hooks import SparkRouterHook
    from airflow_plugins.operators import SparkRouterOperator, SparkRouterRunLink

__all__ = ["SparkRouterHook", "SparkRouterOperator", "SparkRouterRunLink", "get_provider_info"]

_LAZY = {"SparkRouterHook": "airflow_plugins.hooks", "SparkRouterOperator": "airflow_plugins.operators",
         "SparkRouterRunLink": "airflow_plugins.operators"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads through the ``apache_airflow_provider`` entry point: the
    ``spark_router`` connection type (with its form labels) and the operator's extra link."""
    behaviour = connections.UI_FIELD_BEHAVIOUR
    return {
        "package-name": "spark-connect-router",
        "name": "Spark Connect Router",
        "description": "Runs Spark applications on a shared Spark Connect server or as separate "
                       "applications, as the router decides from each app's run history.",
        "connection-types": [{
            "connection-type": connections.CONN_TYPE,
            "hook-class-name": "airflow_plugins.hooks.SparkRouterHook",
            "hook-name": connections.HOOK_NAME,
            # Airflow 3.2+ reads the form's behaviour from here rather than calling the hook.
            "ui-field-behaviour": {"hidden-fields": behaviour["hidden_fields"],
                                   "relabeling": behaviour["relabeling"],
                                   "placeholders": behaviour["placeholders"]},
        }],
        "extra-links": ["airflow_plugins.operators.SparkRouterRunLink"],
    }
