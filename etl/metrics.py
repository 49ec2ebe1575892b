"""Prometheus metrics for ``zvm-etl schedule --metrics-port PORT``.

:class:`Metrics` owns a registry of its own (never prometheus-client's global one), so a
test or an embedding program reads the values it produced and nothing else. The scheduler
feeds it: :meth:`Metrics.observe_pass` after every pass, :meth:`Metrics.observe_status`
with the ZVM's status row (last success, open tasks, retention), :meth:`Metrics.set_backoff`
when a ZVM's interval changes, and every HTTP attempt to a ZVM through the ``on_attempt``
hook of the clients :meth:`Metrics.client_factory` makes. Labels are ZVM names, outcomes
and endpoint templates: never a URL with credentials, a task id or any other secret.

==============================================  =======  =================================
metric                                          type     labels
==============================================  =======  =================================
``zvm_etl_passes_total``                        counter  zvm, outcome (succeeded, failed,
                                                         skipped)
``zvm_etl_pass_duration_seconds``               histo.   zvm
``zvm_etl_tasks_received_total``                counter  zvm
``zvm_etl_tasks_loaded_total``                  counter  zvm, change (inserted, updated,
                                                         unchanged)
``zvm_etl_tasks_rejected_total``                counter  zvm
``zvm_etl_api_request_duration_seconds``        histo.   zvm, endpoint
``zvm_etl_api_errors_total``                    counter  zvm, endpoint, error (http_503,
                                                         timeout, connection, tls, ...)
``zvm_etl_api_retries_total``                   counter  zvm
``zvm_etl_last_success_timestamp_seconds``      gauge    zvm (0 when never)
``zvm_etl_seconds_since_last_success``          gauge    zvm (+Inf when never; at scrape)
``zvm_etl_open_tasks``                          gauge    zvm
``zvm_etl_consecutive_failures``                gauge    zvm
``zvm_etl_interval_seconds``                    gauge    zvm (the current, backed-off one)
``zvm_etl_retention_at_risk``                   gauge    zvm (1 when the gap since the last
                                                         success passed retention_warning)
``zvm_etl_last_complete_verification_``         gauge    zvm (when ``zvm-etl verify`` last
``timestamp_seconds``                                    found the history complete; 0: never)
==============================================  =======  =================================
"""

from __future__ import annotations

import math
import re
import threading
import time
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from etl.config import ZvmConfig
from etl.errors import EtlError
from etl.status import ZvmStatus
from etl.sync import RunResult
from etl.zvm.client import Attempt, ZvmClient

__all__ = ["Metrics", "endpoint_of"]

_TASK_PATH = re.compile(r"^/v1/tasks/(?!types$)[^/]+$")
_HOSTS_PATH = re.compile(r"^/v1/virtualizationsites/[^/]+/hosts$")
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_PASS_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def endpoint_of(path: str) -> str:
    """The endpoint template of a request path: task ids become ``{id}`` (few label values)."""
    if _TASK_PATH.match(path):
        return "/v1/tasks/{id}"
    if path.startswith("/auth/"):
        return "/auth/token"
    if _HOSTS_PATH.match(path):
        return "/v1/virtualizationsites/{site}/hosts"
    return path


class Metrics:
    """The scheduler's metrics, in a registry of their own (see the module docstring)."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.port: int | None = None
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._last_success: dict[str, float | None] = {}
        self._lock = threading.Lock()
        r = self.registry
        self.passes = Counter(
            "zvm_etl_passes", "Passes over a ZVM, by outcome.", ["zvm", "outcome"], registry=r
        )
        self.pass_duration = Histogram(
            "zvm_etl_pass_duration_seconds",
            "How long a pass over a ZVM took (skipped passes excluded).",
            ["zvm"],
            buckets=_PASS_BUCKETS,
            registry=r,
        )
        self.tasks_received = Counter(
            "zvm_etl_tasks_received", "Task records received from a ZVM.", ["zvm"], registry=r
        )
        self.tasks_loaded = Counter(
            "zvm_etl_tasks_loaded",
            "Tasks loaded into the warehouse by committed passes, by change.",
            ["zvm", "change"],
            registry=r,
        )
        self.tasks_rejected = Counter(
            "zvm_etl_tasks_rejected",
            "Task records that could not be loaded (see rejected_tasks).",
            ["zvm"],
            registry=r,
        )
        self.api_latency = Histogram(
            "zvm_etl_api_request_duration_seconds",
            "Duration of one HTTP attempt to a ZVM's API (a login it needed included).",
            ["zvm", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.api_errors = Counter(
            "zvm_etl_api_errors",
            "HTTP attempts to a ZVM that failed: no answer, or an error status.",
            ["zvm", "endpoint", "error"],
            registry=r,
        )
        self.api_retries = Counter(
            "zvm_etl_api_retries", "API calls retried by the client.", ["zvm"], registry=r
        )
        self.last_success = Gauge(
            "zvm_etl_last_success_timestamp_seconds",
            "Unix time the ZVM's last successful pass finished (0: never).",
            ["zvm"],
            registry=r,
        )
        self.since_success = Gauge(
            "zvm_etl_seconds_since_last_success",
            "Seconds since the ZVM's last successful pass finished (+Inf: never).",
            ["zvm"],
            registry=r,
        )
        self.open_tasks = Gauge(
            "zvm_etl_open_tasks", "Tasks not in a final state, per ZVM.", ["zvm"], registry=r
        )
        self.failures = Gauge(
            "zvm_etl_consecutive_failures",
            "Failed passes in a row (0 after a success).",
            ["zvm"],
            registry=r,
        )
        self.interval = Gauge(
            "zvm_etl_interval_seconds",
            "The ZVM's current interval between passes (longer while it backs off).",
            ["zvm"],
            registry=r,
        )
        self.retention_at_risk = Gauge(
            "zvm_etl_retention_at_risk",
            "1 when the gap since the last success passed sync.retention_warning of the "
            "ZVM's task_retention (history is about to be lost), else 0.",
            ["zvm"],
            registry=r,
        )
        self.last_complete_verification = Gauge(
            "zvm_etl_last_complete_verification_timestamp_seconds",
            "Unix time the last zvm-etl verify that found the ZVM's task history complete "
            "finished (0: never).",
            ["zvm"],
            registry=r,
        )

    # -- feeding -------------------------------------------------------------------------

    def track(self, zvm: str) -> None:
        """Create the ZVM's series (so they exist, at zero, before its first pass)."""
        with self._lock:
            if zvm in self._last_success:
                return
            self._last_success[zvm] = None
        for outcome in ("succeeded", "failed", "skipped"):
            self.passes.labels(zvm, outcome)
        for change in ("inserted", "updated", "unchanged"):
            self.tasks_loaded.labels(zvm, change)
        self.tasks_received.labels(zvm)
        self.tasks_rejected.labels(zvm)
        self.api_retries.labels(zvm)
        self.last_success.labels(zvm).set(0)
        self.since_success.labels(zvm).set_function(lambda: self._seconds_since(zvm))
        self.failures.labels(zvm).set(0)
        self.retention_at_risk.labels(zvm).set(0)
        self.last_complete_verification.labels(zvm).set(0)

    def observe_pass(self, result: RunResult) -> None:
        """Count one pass: its outcome, duration, tasks and retries."""
        zvm = result.zvm
        self.track(zvm)
        self.passes.labels(zvm, result.status).inc()
        if result.status == "skipped":
            return
        self.pass_duration.labels(zvm).observe(result.duration_seconds)
        self.api_retries.labels(zvm).inc(result.retries)
        if result.status != "succeeded":
            return  # a failed pass committed nothing
        counts = result.counts
        self.tasks_received.labels(zvm).inc(counts.received)
        self.tasks_loaded.labels(zvm, "inserted").inc(counts.inserted)
        self.tasks_loaded.labels(zvm, "updated").inc(counts.updated)
        self.tasks_loaded.labels(zvm, "unchanged").inc(counts.unchanged)
        self.tasks_rejected.labels(zvm).inc(counts.rejected)
        self._set_last_success(zvm, result.finished_at)

    def observe_status(self, row: ZvmStatus) -> None:
        """Set the gauges read from the warehouse: a row of :func:`etl.status.zvm_status`."""
        zvm = row.zvm
        self.track(zvm)
        self.open_tasks.labels(zvm).set(row.open_tasks)
        self.retention_at_risk.labels(zvm).set(1 if row.retention_at_risk else 0)
        if row.last_success_at:
            self._set_last_success(zvm, datetime.fromisoformat(row.last_success_at))
        if row.proven_complete_at:
            proven = datetime.fromisoformat(row.proven_complete_at).timestamp()
            self.last_complete_verification.labels(zvm).set(proven)

    def set_backoff(self, zvm: str, *, failures: int, interval_seconds: float) -> None:
        """The ZVM's failures in a row and the interval it waits now."""
        self.track(zvm)
        self.failures.labels(zvm).set(failures)
        self.interval.labels(zvm).set(interval_seconds)

    def observe_attempt(self, attempt: Attempt) -> None:
        """One HTTP attempt (the ``on_attempt`` hook of :class:`~etl.zvm.client.ZvmClient`)."""
        endpoint = endpoint_of(attempt.path)
        self.api_latency.labels(attempt.zvm, endpoint).observe(attempt.seconds)
        error = attempt.error
        if error is None and attempt.status is not None and _is_error(attempt.status):
            error = f"http_{attempt.status}"
        if error is not None:
            self.api_errors.labels(attempt.zvm, endpoint, error).inc()

    def client_factory(self, zvm: ZvmConfig) -> ZvmClient:
        """A :class:`ZvmClient` whose HTTP attempts are measured here (for ``sync_zvm``)."""
        return ZvmClient(zvm, on_attempt=self.observe_attempt)

    # -- serving -------------------------------------------------------------------------

    def serve(self, port: int, *, address: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` over HTTP on ``address:port`` in a daemon thread; return the port
        (the one chosen when ``port`` is 0). Raises EtlError when the port cannot be bound."""
        try:
            server, thread = start_http_server(port, addr=address, registry=self.registry)
        except OSError as exc:
            raise EtlError(
                f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}; choose "
                "another --metrics-port"
            ) from None
        self._server, self._thread = server, thread
        self.port = int(server.server_address[1])
        return self.port

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- internals -----------------------------------------------------------------------

    def _set_last_success(self, zvm: str, when: datetime) -> None:
        stamp = when.timestamp()
        with self._lock:
            previous = self._last_success.get(zvm)
            if previous is not None and previous >= stamp:
                return
            self._last_success[zvm] = stamp
        self.last_success.labels(zvm).set(stamp)

    def _seconds_since(self, zvm: str) -> float:
        with self._lock:
            stamp = self._last_success.get(zvm)
        return math.inf if stamp is None else max(0.0, time.time() - stamp)


def _is_error(status: int) -> bool:
    """Statuses that are failures (404 is an answer: "that task is gone")."""
    return status >= 500 or status in (400, 401, 403, 429)
