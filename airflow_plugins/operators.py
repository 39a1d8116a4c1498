"""The Airflow operator: ask the router where a Spark app runs, launch it there, fall back, report."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, overload

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException

from airflow_plugins import connections
from airflow_plugins.hooks import SparkRouterHook, spark_connect_url_of
from client_runtime import sentry

if TYPE_CHECKING:
    from airflow.sdk import Context

    from client_runtime.launcher import Launcher
    from client_runtime.protocol import RequestedMode
    from airflow.sdk.types import TaskInstanceKey

MODES = ("auto", "connect", "standalone")
XCOM_RUN_ID, XCOM_MODE, XCOM_FELL_BACK, XCOM_RUN_URL = "run_id", "mode", "fell_back", "run_url"


class SparkRouterRunLink(BaseOperatorLink):
    """The task's run on the router's dashboard: ``{router URL}/runs/{run_id}``. Empty when the run was
    decided without the router (it was unreachable), which keeps no page for it."""

    name = "Spark Router run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = getattr(operator, "_run_url", None)  # "": the run has no page; None: it did not run here
        if url is None:
            from airflow.sdk.execution_time.xcom import XCom

            url = XCom.get_value(ti_key=ti_key, key=XCOM_RUN_URL)
        return url or ""


class SparkRouterOperator(BaseOperator):
    """Runs a Spark application where the Spark Connect Router decides: on the shared Spark Connect server
    or as a separate application (``spark-submit``). The app's output streams into the task log; a run that
    fails because of Spark Connect is rerun standalone when ``fallback`` and ``idempotent`` allow it. The
    task fails with the app's error when the final run fails. XCom gets ``run_id``, ``mode`` (where the final
    run ran), ``fell_back`` and ``run_url``, and the return value holds them all with every attempt
    (``runs``). When the router cannot be reached the run goes on in
    ``SPARK_ROUTER_MODE_IF_ROUTER_UNREACHABLE``. Settings not given here come from the worker's
    ``SPARK_ROUTER_*`` environment (standalone master, default mode, state dir, ...).

    :param application: the app: a ``.py`` file, a directory with ``main.py``/``__main__.py``, a
        ``.zip``/``.whl``, a ``.jar``, or an ``s3://`` URI of one (templated).
    :param main_class: for a ``.jar`` application: the class to run, e.g. ``com.acme.Main`` (templated;
    default
        the jar's ``Main-Class``). On Connect it runs as a JVM Connect client, standalone with
        ``spark-submit --class`` (docs/jvm.md).
    :param application_args: arguments passed to the app: a list (templated: its items, or the whole list as
    an
        XComArg, e.g. an upstream task's output, or as a Jinja string in a DAG with
        ``render_template_as_native_obj=True``).
    :param app_id: the app's stable id in the router, whose run history drives the decision (templated;
        default ``<dag_id>.<task_id>``).
    :param mode: ``auto`` (the router decides), ``connect`` or ``standalone`` (forced).
    :param driver_memory: driver memory in Spark's form, e.g. ``2g``.
    :param executor_memory: executor memory, e.g. ``4g``.
    :param driver_cores: driver cores.
    :param executor_cores: cores per executor.
    :param num_executors: number of executors.
    :param spark_conf: the app's Spark confs, ``spark.*`` keys (templated: its values, or the whole dict as
        an XComArg or a Jinja string as for ``application_args``). The router sees them (some confs can only
        be set on an application of its own); Connect runs get them as session confs, standalone runs as
        ``--conf``.
    :param fallback: rerun standalone when the run fails because of Spark Connect (default True).
    :param idempotent: the app may run twice; a fallback reruns it only if True (default True).
    :param run_timeout: how long one run of the app may take (seconds or a timedelta; default no limit).
    :param connect_timeout: how long the Spark Connect server may be unreachable before the run counts as a
        Connect failure (default ``SPARK_ROUTER_CONNECT_TIMEOUT_S``, 30 s).
    :param router_timeout: how long to wait for each answer of the router (default
        ``SPARK_ROUTER_ROUTER_TIMEOUT_S``, 3 s).
    :param spark_router_conn_id: the router's Airflow connection (type ``spark_router``).
    :param spark_connect_conn_id: optional Airflow connection of type ``spark_connect`` whose URL is the Spark
        Connect server to use when the router does not name one (it is unreachable); default
        ``SPARK_ROUTER_CONNECT_URL``.
    """

    template_fields: Sequence[str] = ("application", "application_args", "spark_conf", "app_id", "main_class")
    template_fields_renderers: ClassVar[dict[str, str]] = {"application_args": "json", "spark_conf": "json"}
    ui_color = "#fde7c9"
    operator_extra_links = (SparkRouterRunLink(),)

    def __init__(
        self,
        *,
        application: str,
        application_args: Sequence[Any] | None = None,
        main_class: str | None = None,
        app_id: str | None = None,
        mode: RequestedMode = "auto",
        driver_memory: str | None = None,
        executor_memory: str | None = None,
        driver_cores: int | None = None,
        executor_cores: int | None = None,
        num_executors: int | None = None,
        spark_conf: dict[str, Any] | None = None,
        fallback: bool = True,
        idempotent: bool = True,
        can_wait: bool = True,
        run_timeout: timedelta | float | None = None,
        connect_timeout: timedelta | float | None = None,
        router_timeout: timedelta | float | None = None,
        spark_router_conn_id: str = SparkRouterHook.default_conn_name,
        spark_connect_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        # Templated arguments are kept as given (an XComArg, a Jinja string, a list): Airflow renders them
        # just before execute(), which converts and checks them (build_request).
        if isinstance(spark_conf, Mapping):
            _spark_conf(spark_conf)  # keys are never rendered: a bad one fails the DAG's import
        self.application = application
        self.application_args = application_args
        self.main_class = main_class
        self.app_id = app_id
        self.mode = mode
        self.driver_memory = driver_memory
        self.executor_memory = executor_memory
        self.driver_cores = driver_cores
        self.executor_cores = executor_cores
        self.num_executors = num_executors
        self.spark_conf = spark_conf
        self.fallback = fallback
        self.idempotent = idempotent
        # An auto run may wait in the router's admission queue (long polls; on_kill cancels it there too).
        self.can_wait = can_wait
        self.run_timeout = _seconds(run_timeout, "run_timeout")
        self.connect_timeout = _seconds(connect_timeout, "connect_timeout")
        self.router_timeout = _seconds(router_timeout, "router_timeout")
        self.spark_router_conn_id = spark_router_conn_id
        self.spark_connect_conn_id = spark_connect_conn_id
        self._launcher: Launcher | None = None
        self._killed = False
        self._run_url: str | None = None  # set by execute()

    # ----------------------------------------------------------------------------------------- inputs

    def resolved_app_id(self, dag_id: str, task_id: str) -> str:
        return _text(self.app_id, "app_id", required=False) or f"{dag_id}.{task_id}"

    def build_settings(self, router_url: str, token: str | None, connect_url: str | None = None):
        """The launcher's settings: the router from the Airflow connection, timeouts from this task, the rest
        from the worker's SPARK_ROUTER_* environment."""
        from pydantic import SecretStr, ValidationError

        from client_runtime.settings import ClientSettings

        try:
            base = ClientSettings()
        except ValidationError as exc:
            raise AirflowException(f"invalid SPARK_ROUTER_* setting in the worker's environment: {exc}") \
                from None
        update: dict[str, Any] = {"url": router_url.rstrip("/")}
        if token:
            update["api_token"] = SecretStr(token)
        for field, value in (("run_timeout_s", self.run_timeout), ("connect_timeout_s", self.connect_timeout),
                             ("router_timeout_s", self.router_timeout), ("connect_url", connect_url)):
            if value is not None:
                update[field] = value
        return base.model_copy(update=update)

    def build_request(self, context: Context):
        """The launcher's request from the rendered templated arguments; a TypeError or ValueError naming the
        argument when one rendered to something it cannot be."""
        from client_runtime.launcher import RunRequest
        from client_runtime.protocol import resources

        ti = context["ti"]
        return RunRequest(
            app_id=self.resolved_app_id(ti.dag_id, ti.task_id),
            app=_text(self.application, "application"),
            args=_args(self.application_args),
            mode=self.mode,
            resources=resources(driver_memory=self.driver_memory, executor_memory=self.executor_memory,
                                driver_cores=self.driver_cores, executor_cores=self.executor_cores,
                                num_executors=self.num_executors),
            spark_conf=_spark_conf(self.spark_conf),
            fallback=bool(self.fallback),
            idempotent=bool(self.idempotent),
            can_wait=bool(self.can_wait),
            airflow={"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
                     "try_number": ti.try_number},
            main_class=_text(self.main_class, "main_class", required=False),
        )

    # ---------------------------------------------------------------------------------------- running

    def execute(self, context: Context) -> dict[str, Any]:
        from client_runtime.artifacts import ArtifactError
        from client_runtime.launcher import Launcher
        from client_runtime.router_client import RouterRejected

        try:
            hook = SparkRouterHook(self.spark_router_conn_id)
            router_url, token = hook.get_router_url(), hook.get_token()
            connect_url = (spark_connect_url_of(self.spark_connect_conn_id) if self.spark_connect_conn_id
                           else None)
        except ValueError as exc:
            raise AirflowException(str(exc)) from None
        settings = self.build_settings(router_url, token, connect_url)
        request = self.build_request(context)
        self.log.info("Spark Connect Router at %s: app %s (%s), mode %s, fallback %s", router_url,
                      request.app_id, request.app, request.mode,
                      "on" if request.fallback and request.idempotent else "off")
        sentry.init_sentry("operator")
        ti = context["ti"]
        sentry.set_run_tags(app_id=request.app_id, dag_id=ti.dag_id, task_id=ti.task_id,
                            airflow_run_id=ti.run_id, try_number=ti.try_number)
        launcher = self._launcher = Launcher(settings, on_line=self._on_line, on_event=self._on_event)
        try:
            # An exception raised into it (execution_timeout) stops the app's process tree before it unwinds.
            result = launcher.run(request)
        except (ArtifactError, RouterRejected) as exc:
            sentry.report_exception(exc)
            raise AirflowException(f"Spark app {request.app_id} did not start: {exc}") from None
        finally:
            self._launcher = None
        sentry.set_run_tags(run_id=result.run_id, mode=result.mode)

        local_run = result.run_id.startswith("local-")  # decided without the router: it has no page for it
        self._run_url = "" if local_run else connections.run_url(router_url, result.run_id)
        summary = {"app_id": request.app_id, "run_id": result.run_id, "mode": result.mode,
                   "fell_back": result.fell_back, "oom_rerun": result.oom_rerun,
                   "exit_code": result.exit_code, "run_url": self._run_url or None, "runs": result.runs}
        for key in (XCOM_RUN_ID, XCOM_MODE, XCOM_FELL_BACK, XCOM_RUN_URL):
            ti.xcom_push(key=key, value=summary[key])
        where = f"{result.mode} run {result.run_id}"
        if result.fell_back:
            where += " (after falling back from Connect)"
        if result.oom_rerun:
            where += " (its one rerun with more memory, after running out of it)"
        if self._run_url:
            self.log.info("Spark Router run: %s", self._run_url)
        if self._killed:
            error = AirflowException(f"Spark app {request.app_id} was stopped ({where})")
            sentry.report_exception(error)
            raise error
        if result.exit_code != 0:
            error = AirflowException(f"Spark app {request.app_id} failed, {where}, exit code "
                                     f"{result.exit_code}: "
                                     f"{result.runs[-1]['error'] or 'no error line in its output'}")
            sentry.report_exception(error)
            raise error
        self.log.info("Spark app %s succeeded: %s", request.app_id, where)
        return summary

    def on_kill(self) -> None:
        """Stop the app's process tree (SIGTERM, then SIGKILL after a grace period)."""
        self._killed = True
        launcher = self._launcher
        if launcher is not None:
            self.log.info("Stopping the Spark app")
            launcher.cancel()

    # ------------------------------------------------------------------------------------------ output

    def _on_line(self, line: str) -> None:
        self.log.info("%s", line)

    def _on_event(self, message: str) -> None:
        if message.startswith("WARNING: "):
            self.log.warning("[spark-router] %s", message.removeprefix("WARNING: "))
        else:
            self.log.info("[spark-router] %s", message)


def _seconds(value: timedelta | float | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be positive; got {value!r}")
    return seconds


# The rendered templated arguments, checked. A Jinja string renders to a string unless the DAG has
# render_template_as_native_obj=True, hence the hint.
NATIVE_HINT = " (a Jinja string renders to a {kind} only in a DAG with render_template_as_native_obj=True)"


@overload
def _text(value: Any, name: str) -> str: ...
@overload
def _text(value: Any, name: str, *, required: bool) -> str | None: ...
def _text(value: Any, name: str, *, required: bool = True) -> str | None:
    """The value as a string: a ValueError if it is empty and required, a TypeError if it is no text."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"{name} is empty")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a string; it rendered to {type(value).__name__} {value!r:.200}")
    return str(value).strip()


def _args(value: Any) -> list[str]:
    """application_args: a list (or any sequence) of arguments; non-strings become strings."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        hint = NATIVE_HINT.format(kind="list") if isinstance(value, str) else ""
        raise TypeError(f"application_args must be a list of arguments, e.g. ['--date', '{{{{ ds }}}}']; it "
                        f"rendered to {type(value).__name__} {value!r:.200}{hint}")
    return [str(arg) for arg in value]


def _spark_conf(value: Any) -> dict[str, str]:
    """spark_conf: a dict of Spark confs (spark.* keys); values become strings, booleans Spark's
    true/false."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        hint = NATIVE_HINT.format(kind="dict") if isinstance(value, str) else ""
        raise TypeError(f"spark_conf must be a dict of Spark confs, e.g. {{'spark.sql.shuffle.partitions': "
                        f"'64'}}; it rendered to {type(value).__name__} {value!r:.200}{hint}")
    for key in value:
        if not isinstance(key, str) or not key.startswith("spark."):
            raise ValueError(f"spark_conf keys are Spark confs (spark.*); got {key!r}")
    return {key: _conf_value(conf) for key, conf in value.items()}


def _conf_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
