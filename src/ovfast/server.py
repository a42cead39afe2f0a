"""The server process: one asyncio loop running the control plane and REST over one data plane,
beside the native gRPC front-end."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl

from aiohttp import web

from ovfast import _native
from ovfast.errors import OvfastError
from ovfast.api.access import AccessConfig
from ovfast.api.dataplane import DataPlane
from ovfast.api.grpc.frontend import GrpcFrontend, grpc_addresses
from ovfast.api.grpc.server import KServeService
from ovfast.api.grpc.tfs import TfsService
from ovfast.api.modelmesh import service as modelmesh_service
from ovfast.api.modelmesh.runtime import ModelMeshRuntime
from ovfast.api.rest.tfs import tfs_routes
from ovfast.api.rest.app import build_rest_app
from ovfast.api.rest.config_api import config_routes
from ovfast.api.rest.limits import ConnectionBudget, LimitedSite, max_connections, raise_descriptor_limit
from ovfast.config.request_limits import effective_limits
from ovfast.config.schema import RepositoryConfig, ServerConfig
from ovfast.observability.metrics import metrics_route, select_families
from ovfast.repository.registry import ModelRegistry
from ovfast.repository.storage import Storage
from ovfast.repository.reloader import ConfigReloader
from ovfast.repository.residency import Residency
from ovfast.runtime.completions import CompletionDispatcher
from ovfast.runtime.sequence_cleaner import SequenceCleaner

log = logging.getLogger("ovfast.server")
SHUTDOWN_GRACE_S = 30.0
SHOWN_NAMES = 50  # model names in the "Server ready" line


class Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        # TLS, the API key (``access.api_key``: bytes or None, for the native gRPC server's
        # ``authorization`` check too), the model-control switch and the REST limits
        self.access: AccessConfig = config.extra.get("access") or AccessConfig()
        self.core = _native.Core()
        if config.cache_dir and _writable_dir(config.cache_dir):
            self.core.set_property("", {"CACHE_DIR": config.cache_dir})
        if config.extra.get("cpu_extension"):
            self.core.add_extension(config.extra["cpu_extension"])
        if config.extra.get("request_limits"):
            _native.set_decode_limits(**config.extra["request_limits"])
        self.completions = CompletionDispatcher()
        self.registry = ModelRegistry(self.completions, self.core)
        self.registry.storage = Storage(**config.extra.get("storage", {}))
        self.dataplane = DataPlane(self.registry)
        self.dataplane.metrics.configure(config.metrics_enable, select_families(config.metrics_list))
        # every port reserves what a request holds from this one bound (--max_request_memory; 0 = none)
        self.request_memory = _native.RequestMemory(config.max_request_memory)
        self.dataplane.metrics.request_memory = self.request_memory
        self.reloader = ConfigReloader(self.registry, config.config_path, config.repository, config.models,
                                       echo=config.echo)
        self.reloader.on_file = self._apply_request_limits
        self.dataplane.reload_config = self._reload_config  # TFS HandleReloadConfigRequest
        self.dataplane.refuse_model_control = self.access.refuse_model_control  # repository load / unload
        self.dataplane.make_residency = lambda: Residency(self.registry, config.residency)
        if config.residency.active:
            self.registry.residency = Residency(self.registry, config.residency)
        # ModelMesh's SPI (--modelmesh): its loads and unloads are catalog/residency operations
        self.modelmesh: ModelMeshRuntime | None = None
        if config.modelmesh is not None and self.registry.residency is not None:
            self.modelmesh = ModelMeshRuntime(self.registry, self.registry.residency, config.modelmesh)
        self._mm_grpc: GrpcFrontend | None = None
        self.sequence_cleaner = SequenceCleaner(self.registry, config.sequence_cleaner_poll_wait_minutes * 60)
        self._stop = asyncio.Event()
        self._grpc: GrpcFrontend | None = None
        self._rest_runner: web.AppRunner | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.completions.attach(loop)
        cfg = self.config
        fd_limit = raise_descriptor_limit()
        mm_handlers = modelmesh_service.handlers(self.modelmesh) if self.modelmesh is not None else {}
        mm_addresses = cfg.modelmesh.addresses(cfg.grpc_bind_address) if cfg.modelmesh is not None else []
        data_addresses = grpc_addresses(cfg.grpc_bind_address, cfg.port) if cfg.port else []
        if cfg.modelmesh is not None and cfg.modelmesh.data_socket:
            data_addresses.append(cfg.modelmesh.data_socket)
        # management and data endpoints may be one (ModelMesh allows it): then one server answers both
        shared = bool(mm_handlers) and set(mm_addresses) <= set(data_addresses)
        if cfg.port:
            handlers = {**KServeService(self.dataplane).handlers(),
                        **TfsService(self.dataplane, self.access).handlers(),
                        **(mm_handlers if shared else {})}
            metrics = self.dataplane.metrics
            # the native front-end reports the requests it fails only when they would be logged
            on_failure = self.dataplane.log_failure if self.dataplane.logs_failures() else None
            # --api_key_file on gRPC: the native front-end checks metadata "authorization" on every
            # call but the health ones (api.access.HEALTH_RPCS), before anything is parsed or forwarded
            self._grpc = GrpcFrontend(handlers, self.registry.routes, data_addresses,
                                      kserve_route=metrics.route_kserve_grpc_infer,
                                      tfs_route=metrics.route_tfs_grpc_predict,
                                      memory_quota=cfg.grpc_memory_quota or 0,
                                      workers=cfg.grpc_workers, max_threads=cfg.grpc_max_threads,
                                      channel_args=cfg.extra.get("grpc_channel_arguments"),
                                      tls=cfg.grpc_tls, request_memory=self.request_memory,
                                      api_key=(self.access.api_key or b"").decode("ascii"),
                                      on_failure=on_failure, model_id_headers=self.modelmesh is not None)
            try:
                bound = self._grpc.start(loop)
            except OSError:
                self._grpc = None
                raise
            tls = "" if cfg.grpc_tls is None else " (mutual TLS)" if cfg.grpc_tls.mutual else " (TLS)"
            workers = f" ({cfg.grpc_workers} server instances)" if cfg.grpc_workers > 1 else ""
            log.info("Started gRPC server on %s%s%s", ", ".join(bound), tls, workers)
        if mm_handlers and not shared:
            # the management endpoint: its own native server, forwarding the SPI's five methods only
            self._mm_grpc = GrpcFrontend(mm_handlers, _native.RouteTable(), mm_addresses, serve_inference=False)
            try:
                bound = self._mm_grpc.start(loop)
            except OSError:
                self._mm_grpc = None
                raise
            log.info("Started ModelMesh runtime SPI (mmesh.ModelRuntime) on %s", ", ".join(bound))
        if cfg.rest_port:
            # /v1/config comes from the lifecycle routes (status + reload); TFS adds /v1/models...
            tfs = [r for r in tfs_routes(self.dataplane) if r[1] != "/v1/config"]
            access = self.access
            app = build_rest_app(self.dataplane, config_routes(self.registry, self.reloader, access) + tfs
                                 + [metrics_route(self.dataplane.metrics)], cors=cfg.extra.get("cors"),
                                 access=access, request_memory=self.request_memory)
            limits = access.rest_limits
            # keepalive_timeout: how long a connection may wait for (the rest of) a request's headers;
            # handler_cancellation: a client that goes away cancels its handler (and its queued work)
            self._rest_runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                              shutdown_timeout=SHUTDOWN_GRACE_S,
                                              keepalive_timeout=limits.header_timeout_s, handler_cancellation=True)
            await self._rest_runner.setup()
            budget = ConnectionBudget(max_connections(limits, fd_limit))  # one for the port's addresses
            for host in cfg.rest_bind_address.split(","):
                site = LimitedSite(self._rest_runner, host.strip(), cfg.rest_port, budget=budget,
                                   ssl_context=access.rest_ssl, handshake_timeout_s=limits.header_timeout_s)
                await site.start()
            tls = "plaintext" if access.rest_ssl is None else (
                "mutual TLS" if access.rest_ssl.verify_mode == ssl.CERT_REQUIRED else "TLS")
            log.info("Started REST server on %s:%d (%s, at most %d connections)", cfg.rest_bind_address,
                     cfg.rest_port, tls, budget.limit)
        if self.registry.residency is not None:
            await self.registry.residency.warm_up(cfg.models or _warm_up_models(self.modelmesh is not None))
        await self.reloader.start()
        self.reloader.watch(cfg.file_system_poll_wait_seconds)
        if self.registry.residency is not None:
            self.registry.residency.start()
            r = cfg.residency
            log.info("Residency: memory budget %s, idle unload %s, model control mode %s",
                     f"{r.memory_budget} bytes" if r.memory_budget else "none",
                     f"after {r.idle_unload_seconds:g} s" if r.idle_unload_seconds else "never",
                     "explicit" if r.explicit else "none")
        self.sequence_cleaner.start()
        self.dataplane.ready = True
        if self.modelmesh is not None:
            self.modelmesh.started = True  # runtimeStatus may say READY from now on
            log.info("ModelMesh runtime: capacity %d bytes, %d concurrent load(s), load timeout %d ms, default "
                     "model size %d bytes", cfg.modelmesh.capacity_bytes, cfg.modelmesh.loading_concurrency,
                     cfg.modelmesh.load_timeout_ms, cfg.modelmesh.default_model_size)
        names = sorted(self.registry.models)
        shown = ", ".join(names[:SHOWN_NAMES]) + (f", ... ({len(names) - SHOWN_NAMES} more)"
                                                   if len(names) > SHOWN_NAMES else "")
        log.info("Server ready: %d model(s): %s", len(names), shown)

    def _apply_request_limits(self, repo: RepositoryConfig) -> None:
        """A reloaded config.json's request_limits take effect for the requests parsed from now on (the
        flags given on the command line still win)."""
        limits = effective_limits(repo.request_limits, self.config.extra.get("request_limit_flags", {}))
        if limits != _native.decode_limits():
            _native.set_decode_limits(**limits)
            log.info("Config reload: request limits now %s", limits)

    async def _reload_config(self) -> None:
        result = await self.reloader.cycle()
        if result.error:
            from ovfast.errors import FailedPreconditionError
            raise FailedPreconditionError(f"Reloading config file failed - {result.error}")

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Graceful: stop accepting, let in-flight requests finish, then unload."""
        log.info("Shutting down: finishing in-flight requests")
        self.dataplane.ready = False
        # requests queued in a batcher are in flight too: they run now rather than after their delay
        self.registry.flush_batches()
        tasks = []
        if self._grpc is not None:
            tasks.append(self._grpc.stop(SHUTDOWN_GRACE_S))
        if self._mm_grpc is not None:
            tasks.append(self._mm_grpc.stop(SHUTDOWN_GRACE_S))
        if self._rest_runner is not None:
            tasks.append(self._rest_runner.cleanup())
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.reloader.stop()
        if self.modelmesh is not None:
            await self.modelmesh.stop()
        if self.registry.residency is not None:
            await self.registry.residency.stop()
        await self.sequence_cleaner.stop()
        await self.reloader.pipelines.stop()
        await self.registry.unload_all()
        self.completions.detach()
        log.info("Server stopped")


def _warm_up_models(modelmesh: bool) -> tuple:
    """Under ModelMesh no model is known at start: residency warms up with a small MLP (MatMul, ReLU, Add) built
    in a temporary folder, so that the first model ModelMesh loads is not measured with OpenVINO's one-off
    start-up memory (the CPU plugin, its thread pools, the common kernels)."""
    if not modelmesh:
        return ()
    import atexit
    import shutil
    import tempfile

    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    from ovfast.config.schema import ModelConfig
    try:
        base = tempfile.mkdtemp(prefix="ovfast-warm-up-")
        atexit.register(shutil.rmtree, base, True)
        x = ops.parameter([1, 64], ov.Type.f32, name="x")
        w = np.linspace(-1, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
        y = ops.add(ops.relu(ops.matmul(x, ops.constant(w), False, False)), ops.constant(np.float32(1)))
        os.makedirs(f"{base}/1")
        ov.save_model(ov.Model([ops.result(y)], [x], "warm_up"), f"{base}/1/model.xml", compress_to_fp16=False)
    except OSError as exc:  # nowhere to write it (read-only file system): measured without the warm-up
        log.warning("No warm-up model (%s): the first loaded model's size includes OpenVINO's start-up memory", exc)
        return ()
    return (ModelConfig(name="warm-up", base_path=base),)


def _writable_dir(path: str) -> bool:
    """Whether the compiled-model cache can live in ``path`` (created if missing). A read-only file
    system (e.g. a container run with --read-only) or a directory of another user turns the cache off
    with a warning rather than failing every model load."""
    try:
        os.makedirs(path, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)
        reason = "permission denied"
    except OSError as exc:
        writable, reason = False, exc.strerror or str(exc)
    if not writable:
        log.warning("--cache_dir %s is not writable (%s): compiled models are not cached", path, reason)
    return writable


async def run_server(config: ServerConfig) -> int:
    try:
        server = Server(config)
    except OvfastError as exc:  # e.g. an --cpu_extension that OpenVINO cannot load
        log.error("Cannot start server: %s", exc)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    try:
        await server.start()
    except OSError as exc:
        log.error("Cannot start server: %s", exc)
        await server.stop()
        return 1
    await server.wait()
    await server.stop()
    return 0
