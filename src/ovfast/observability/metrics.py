"""Prometheus metrics with OVMS family names (spec/ovms.md §8).

What lives where:

- Per-request counting is native. Each ``_native.Servable`` owns a ``ServableMetrics``
  (native/include/ovfast/metrics.hpp): success/fail counters per request *route*, the
  inference / wait / request-time histograms and the in-flight gauge, all relaxed atomics
  updated in ``Servable::submit`` / ``on_done``. The hot path passes a route number to
  ``submit_kserve`` / ``submit_tensors`` and does nothing else for metrics.
- This module owns the names: the family table, the route table (mirrored by
  ``metrics.hpp``), ``metrics_list`` validation, and the collector that walks the model
  registry at scrape time and renders Prometheus text.
- Requests that never reach ``submit`` (metadata, status/ready, failures while parsing a
  REST body) are counted with :meth:`ServingMetrics.count`; it is cheap but not meant for
  the inference hot path.

Counters keep their OVMS names (``ovms_requests_success``, no ``_total`` suffix), so the text
is written here rather than by ``prometheus_client.generate_latest``, which would append
``_total`` to every counter; the samples are ``prometheus_client`` ``Metric`` objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from ovfast import _native
from ovfast.repository.residency_stats import COLD_LOAD_BUCKETS_S

if TYPE_CHECKING:  # pragma: no cover
    from ovfast.repository.registry import ModelRegistry
    from ovfast.runtime.model import ModelHandle

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# -- routes: (api, interface, method); index = api * 6 + interface * 3 + method (metrics.hpp) ----------
TFS = "TensorFlowServing"
KSERVE = "KServe"
GRPC = "gRPC"
REST = "REST"
_API_METHODS = {
    TFS: ("Predict", "GetModelMetadata", "GetModelStatus"),
    KSERVE: ("ModelInfer", "ModelMetadata", "ModelReady"),
}
ROUTES: tuple[tuple[str, str, str], ...] = tuple(
    (api, interface, method) for api in (TFS, KSERVE) for interface in (GRPC, REST) for method in _API_METHODS[api])
ROUTE_ID: dict[tuple[str, str, str], int] = {r: i for i, r in enumerate(ROUTES)}
# Series of these methods carry no `version` label (OVMS): they are counted per model name.
UNVERSIONED_METHODS = frozenset({"GetModelStatus", "ModelReady"})
assert len(ROUTES) == _native.METRICS_ROUTE_COUNT, "route table out of sync with native/include/ovfast/metrics.hpp"

# Routes the transports pass to the native submit calls.
ROUTE_TFS_GRPC_PREDICT = ROUTE_ID[(TFS, GRPC, "Predict")]
ROUTE_TFS_REST_PREDICT = ROUTE_ID[(TFS, REST, "Predict")]
ROUTE_KSERVE_GRPC_INFER = ROUTE_ID[(KSERVE, GRPC, "ModelInfer")]
ROUTE_KSERVE_REST_INFER = ROUTE_ID[(KSERVE, REST, "ModelInfer")]

BUCKET_BOUNDS_US: tuple[int, ...] = tuple(_native.HISTOGRAM_BOUNDS_US)
BATCH_SIZE_BOUNDS: tuple[int, ...] = tuple(_native.BATCH_SIZE_BOUNDS)


# -- families --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    name: str
    type: str  # "counter" | "gauge" | "histogram"
    help: str


_FAMILY_LIST = (
    Family("ovms_requests_success", "counter", "Number of successful requests to a model or a DAG."),
    Family("ovms_requests_fail", "counter", "Number of failed requests to a model or a DAG."),
    Family("ovms_request_time_us", "histogram", "Processing time of requests to a model or a DAG."),
    Family("ovms_inference_time_us", "histogram", "Inference execution time in the OpenVINO backend."),
    Family("ovms_wait_for_infer_req_time_us", "histogram", "Request waiting time in the scheduling queue."),
    Family("ovms_streams", "gauge", "Number of OpenVINO execution streams."),
    Family("ovms_infer_req_queue_size", "gauge", "Inference request queue size (nireq)."),
    Family("ovms_infer_req_active", "gauge",
           "Number of currently consumed inference request from the processing queue."),
    Family("ovms_current_requests", "gauge", "Number of inference requests currently in process."),
    Family("ovfast_models_loaded", "gauge", "Number of model versions currently loaded and AVAILABLE."),
    Family("ovfast_model_load_time_seconds", "gauge", "Time taken to read and compile a model version."),
    # dynamic batching (docs/config.md): series only for versions served with a batcher
    Family("ovfast_batch_size", "histogram", "Rows per inference run by the dynamic batcher."),
    Family("ovfast_batch_queue_delay_us", "histogram",
           "Time a request waited in the dynamic batcher's queue before its batch was dispatched."),
    # overload (docs/config.md): refused by a model's max_queue_size, or by --max_request_memory
    Family("ovfast_requests_rejected", "counter",
           "Requests refused because the server was overloaded (reason: queue_full, request_memory)."),
    Family("ovfast_request_memory_bytes", "gauge", "Bytes held by requests in flight (bounded by --max_request_memory)."),
    # residency (repository/residency.py): series only when it is on (a budget, idle unloading,
    # explicit model control, or a load/unload through the repository API)
    Family("ovfast_memory_used_bytes", "gauge", "Measured memory of the model versions loaded now."),
    Family("ovfast_memory_budget_bytes", "gauge", "The memory budget for loaded models (0 = none)."),
    Family("ovfast_memory_unaccounted_bytes", "gauge",
           "Resident memory grown since start beyond the loaded versions' measured sizes, counted against the budget."),
    Family("ovfast_model_memory_bytes", "gauge",
           "Measured memory cost of a loaded version (read + compile + infer requests)."),
    Family("ovfast_model_loads", "counter", "Versions loaded by residency (on request or explicitly)."),
    Family("ovfast_model_unloads", "counter", "Versions unloaded by residency, by reason (budget, idle, explicit)."),
    Family("ovfast_model_load_failures", "counter", "Loads by residency that failed."),
    Family("ovfast_cold_load_time_seconds", "histogram", "Time to load a version that a request or a load call asked for."),
    # stateful models (spec/ovms.md §5): series only for stateful versions
    Family("ovfast_sequences", "gauge", "Number of live sequences of a stateful model version."),
    Family("ovfast_sequence_state_bytes", "gauge",
           "Memory held by the saved state of a stateful model version's live sequences, in bytes."),
)
RESIDENCY_FAMILIES = frozenset({
    "ovfast_memory_used_bytes", "ovfast_memory_budget_bytes", "ovfast_memory_unaccounted_bytes", "ovfast_model_loads",
    "ovfast_model_unloads", "ovfast_model_load_failures", "ovfast_cold_load_time_seconds"})
FAMILIES: dict[str, Family] = {f.name: f for f in _FAMILY_LIST}
# OVMS MediaPipe/graph families: valid in metrics_list (configs written for OVMS keep working) but
# ovfast serves no MediaPipe graphs, so they have no series.
GRAPH_FAMILIES = frozenset({
    "ovms_current_graphs", "ovms_requests_accepted", "ovms_requests_rejected", "ovms_responses",
    "ovms_graph_error", "ovms_graph_processing_time_us", "ovms_graph_request_latency_us",
})
# Without metrics_list: OVMS's default set (the two infer_req gauges must be asked for) + ovfast's own.
DEFAULT_FAMILIES: tuple[str, ...] = tuple(
    f.name for f in _FAMILY_LIST if f.name not in ("ovms_infer_req_queue_size", "ovms_infer_req_active"))


def select_families(names: Sequence[str]) -> tuple[str, ...]:
    """The families to expose for a ``metrics_list`` (empty = the default set).

    Raises ``ValueError("Invalid name in metrics_list: ...")`` for names OVMS and ovfast do not know.
    """
    if not names:
        return DEFAULT_FAMILIES
    unknown = [n for n in names if n not in FAMILIES and n not in GRAPH_FAMILIES]
    if unknown:
        raise ValueError("Invalid name in metrics_list: " + ", ".join(unknown))
    return tuple(dict.fromkeys(n for n in names if n in FAMILIES))


# -- collection ------------------------------------------------------------------------------------------
class ServingMetrics:
    """The server's metrics: the per-name counters Python keeps, and the scrape-time collector.

    Parameters
    ----------
    registry : ModelRegistry
        Walked at every scrape; nothing is registered per model.
    enabled : bool
        Off: no request is counted (the routes handed to the native submit calls are -1, so the
        native side does no metrics work either) and ``/metrics`` answers 400.
    families : sequence of str
        The families :meth:`render` exposes (see :func:`select_families`).
    """

    def __init__(self, registry: ModelRegistry, enabled: bool = False,
                 families: Sequence[str] = DEFAULT_FAMILIES) -> None:
        self.registry = registry
        # the server-wide request memory bound every transport reserves from (set by the server)
        self.request_memory: Any = None
        # model name -> [success per route..., fail per route...] for unversioned (status/ready) routes
        self._by_name: dict[str, list[int]] = {}
        self.configure(enabled, families)

    def configure(self, enabled: bool, families: Sequence[str] = DEFAULT_FAMILIES) -> None:
        """Set once at server start, before any request."""
        self.enabled = enabled
        self.families = tuple(families)
        # The routes transports pass to submit_kserve / submit_tensors (-1 = not counted).
        self.route_kserve_grpc_infer = ROUTE_KSERVE_GRPC_INFER if enabled else -1
        self.route_kserve_rest_infer = ROUTE_KSERVE_REST_INFER if enabled else -1
        self.route_tfs_grpc_predict = ROUTE_TFS_GRPC_PREDICT if enabled else -1
        self.route_tfs_rest_predict = ROUTE_TFS_REST_PREDICT if enabled else -1

    def count(self, target: ModelHandle | str, api: str, interface: str, method: str, ok: bool,
              duration_us: int = 0) -> None:
        """Counts one request that did not go through a native submit with a route.

        ``target`` is the resolved :class:`ModelHandle` (or, for GetModelStatus/ModelReady, which
        OVMS counts per model name, the model name). Requests that fail before a model is resolved
        are not counted (OVMS). Do not call this per inference: pass the route to the submit call.

        Examples
        --------
        >>> metrics.count(handle, TFS, REST, "GetModelMetadata", ok=True)       # doctest: +SKIP
        >>> metrics.count("resnet", KSERVE, GRPC, "ModelReady", ok=True)        # doctest: +SKIP
        """
        if not self.enabled:
            return
        route = ROUTE_ID[(api, interface, method)]
        if method in UNVERSIONED_METHODS:
            name = target if isinstance(target, str) else target.name
            counts = self._by_name.get(name)
            if counts is None:
                counts = self._by_name[name] = [0] * (2 * len(ROUTES))
            counts[route + (0 if ok else len(ROUTES))] += 1
            return
        servable = None if isinstance(target, str) else target.servable
        if servable is not None:
            servable.count(route, ok, int(duration_us))

    def collect(self) -> list[Metric]:
        """Reads every loaded version's native counters once and builds the selected families."""
        want = set(self.families)
        out = {name: Metric(name, FAMILIES[name].help, FAMILIES[name].type) for name in self.families}
        loaded = 0
        per_name = [(route, r) for route, r in enumerate(ROUTES) if r[2] in UNVERSIONED_METHODS] \
            if want & {"ovms_requests_success", "ovms_requests_fail"} else []
        # NOTE: without the per-name families only models holding memory have series: walking a catalog
        # of 10,000 mostly unloaded models took ~90 ms per scrape.
        names = self.registry.models if per_name else {m.name for m in self.registry.resident}
        for name in sorted(names):
            served = self.registry.models[name]
            by_name = self._by_name.get(name)
            for route, (api, interface, method) in per_name:
                labels = {"api": api, "interface": interface, "method": method, "name": name}
                if "ovms_requests_success" in want:
                    out["ovms_requests_success"].add_sample(
                        "ovms_requests_success", labels, by_name[route] if by_name else 0)
                if "ovms_requests_fail" in want:
                    out["ovms_requests_fail"].add_sample(
                        "ovms_requests_fail", labels, by_name[route + len(ROUTES)] if by_name else 0)
            for version in sorted(served.versions):
                handle = served.versions[version]
                servable = handle.servable
                if servable is None:
                    continue
                if handle.available:
                    loaded += 1
                self._add_version(out, want, name, str(version), handle, servable)
        if "ovfast_models_loaded" in want:
            out["ovfast_models_loaded"].add_sample("ovfast_models_loaded", {}, loaded)
        if self.request_memory is not None:
            if "ovfast_requests_rejected" in want:
                out["ovfast_requests_rejected"].add_sample(
                    "ovfast_requests_rejected", {"reason": "request_memory"}, self.request_memory.refused)
            if "ovfast_request_memory_bytes" in want:
                out["ovfast_request_memory_bytes"].add_sample("ovfast_request_memory_bytes", {},
                                                              self.request_memory.in_use)
        residency = self.registry.residency
        if residency is None:
            return [m for name, m in out.items() if name not in RESIDENCY_FAMILIES]
        _add_residency(out, want, residency)
        return list(out.values())

    @staticmethod
    def _add_version(out: dict[str, Metric], want: set[str], name: str, version: str, handle: ModelHandle,
                     servable: Any) -> None:
        snap = servable.metrics()
        nv = {"name": name, "version": version}
        for route, (api, interface, method) in enumerate(ROUTES):
            if method in UNVERSIONED_METHODS:
                continue
            labels = {"api": api, "interface": interface, "method": method, **nv}
            if "ovms_requests_success" in want:
                out["ovms_requests_success"].add_sample("ovms_requests_success", labels, snap["success"][route])
            if "ovms_requests_fail" in want:
                out["ovms_requests_fail"].add_sample("ovms_requests_fail", labels, snap["fail"][route])
        if "ovms_request_time_us" in want:
            for interface, hist in zip((GRPC, REST), snap["request_us"]):
                _add_histogram(out["ovms_request_time_us"], {"interface": interface, **nv}, hist)
        if "ovms_inference_time_us" in want:
            _add_histogram(out["ovms_inference_time_us"], nv, snap["inference_us"])
        if "ovms_wait_for_infer_req_time_us" in want:
            _add_histogram(out["ovms_wait_for_infer_req_time_us"], nv, snap["wait_us"])
        if "ovfast_model_memory_bytes" in want:  # every loaded version, with or without residency
            out["ovfast_model_memory_bytes"].add_sample("ovfast_model_memory_bytes", nv, handle.size_bytes)
        if "ovfast_requests_rejected" in want:
            out["ovfast_requests_rejected"].add_sample("ovfast_requests_rejected", {**nv, "reason": "queue_full"},
                                                       snap["rejected_queue_full"])
        if servable.max_batch_size > 0:
            if "ovfast_batch_size" in want:
                _add_histogram(out["ovfast_batch_size"], nv, snap["batch_size"], BATCH_SIZE_BOUNDS)
            if "ovfast_batch_queue_delay_us" in want:
                _add_histogram(out["ovfast_batch_queue_delay_us"], nv, snap["batch_queue_delay_us"])
        if handle.stateful:
            sequences, state_bytes = handle.sequence_stats()
            for family, value in (("ovfast_sequences", sequences), ("ovfast_sequence_state_bytes", state_bytes)):
                if family in want:
                    out[family].add_sample(family, nv, value)
        gauges = (
            ("ovms_streams", lambda: servable.streams),
            ("ovms_infer_req_queue_size", lambda: servable.nireq),
            ("ovms_infer_req_active", lambda: servable.active),
            ("ovms_current_requests", lambda: snap["current_requests"]),
            ("ovfast_model_load_time_seconds", lambda: handle.load_seconds),
        )
        for family, read in gauges:
            if family in want:
                out[family].add_sample(family, nv, read())

    def render(self) -> bytes:
        """Prometheus text exposition (format 0.0.4) of the selected families."""
        return render_text(self.collect())


def _add_residency(out: dict[str, Metric], want: set[str], residency: Any) -> None:
    stats = residency.stats
    scalars = (("ovfast_memory_used_bytes", residency.used), ("ovfast_memory_budget_bytes", lambda: residency.budget),
               ("ovfast_memory_unaccounted_bytes", residency.unaccounted),
               ("ovfast_model_loads", lambda: stats.loads), ("ovfast_model_load_failures", lambda: stats.load_failures))
    for family, read in scalars:
        if family in want:
            out[family].add_sample(family, {}, read())
    if "ovfast_model_unloads" in want:
        for reason, n in stats.unloads.items():
            out["ovfast_model_unloads"].add_sample("ovfast_model_unloads", {"reason": reason}, n)
    if "ovfast_cold_load_time_seconds" in want:
        m = out["ovfast_cold_load_time_seconds"]
        cumulative = 0
        for bound, n in zip(COLD_LOAD_BUCKETS_S, stats.cold_load_counts):
            cumulative += n
            m.add_sample(m.name + "_bucket", {"le": str(bound)}, cumulative)
        cumulative += stats.cold_load_counts[-1]
        m.add_sample(m.name + "_bucket", {"le": "+Inf"}, cumulative)
        m.add_sample(m.name + "_count", {}, cumulative)
        m.add_sample(m.name + "_sum", {}, stats.cold_load_sum_s)


def _add_histogram(metric: Metric, labels: dict[str, str], hist: tuple[list[int], int],
                   bounds: Sequence[int] = BUCKET_BOUNDS_US) -> None:
    """Native per-bucket counts (the last one is +Inf) and sum -> cumulative ``le`` buckets, _count, _sum."""
    counts, total = hist
    cumulative = 0
    for bound, n in zip(bounds, counts):
        cumulative += n
        metric.add_sample(metric.name + "_bucket", {**labels, "le": str(bound)}, cumulative)
    cumulative += counts[-1]
    metric.add_sample(metric.name + "_bucket", {**labels, "le": "+Inf"}, cumulative)
    # NOTE: _count is the +Inf bucket, so the two always agree within one scrape.
    metric.add_sample(metric.name + "_count", labels, cumulative)
    metric.add_sample(metric.name + "_sum", labels, total)


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _format_value(v: float | int) -> str:
    return str(v) if isinstance(v, int) else floatToGoString(v)


def render_text(metrics: Iterable[Metric]) -> bytes:
    """Writes families as Prometheus text, names exactly as given (counters get no ``_total``)."""
    lines: list[str] = []
    for m in metrics:
        lines.append(f"# HELP {m.name} {m.documentation}")
        lines.append(f"# TYPE {m.name} {m.type}")
        for s in m.samples:
            if s.labels:
                labels = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in s.labels.items())
                lines.append(f"{s.name}{{{labels}}} {_format_value(s.value)}")
            else:
                lines.append(f"{s.name} {_format_value(s.value)}")
    lines.append("")
    return "\n".join(lines).encode()


# -- REST endpoint ---------------------------------------------------------------------------------------
def metrics_route(metrics: ServingMetrics) -> tuple[str, str, Any]:
    """The ``GET /metrics`` route for the REST app. Disabled metrics answer as OVMS does:
    400 ``{"error": "Invalid request URL"}``. Query parameters are ignored."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        if not metrics.enabled:
            return web.json_response({"error": "Invalid request URL"}, status=400)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return ("GET", "/metrics", handler)
