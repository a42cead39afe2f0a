"""The server process: one asyncio loop running the control plane and REST over one data plane,
beside the native gRPC front-end."""
from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ovfast import _native
from ovfast.errors import OvfastError
from ovfast.api.dataplane import DataPlane
from ovfast.api.grpc.frontend import GrpcFrontend, grpc_addresses
from ovfast.api.grpc.server import KServeService
from ovfast.api.grpc.tfs import TfsService
from ovfast.api.rest.tfs import tfs_routes
from ovfast.api.rest.app import build_rest_app
from ovfast.api.rest.config_api import config_routes
from ovfast.config.schema import ServerConfig
from ovfast.observability.metrics import metrics_route, select_families
from ovfast.repository.registry import ModelRegistry
from ovfast.repository.reloader import ConfigReloader
from ovfast.runtime.completions import CompletionDispatcher
from ovfast.runtime.sequence_cleaner import SequenceCleaner

log = logging.getLogger("ovfast.server")
SHUTDOWN_GRACE_S = 30.0


class Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.core = _native.Core()
        if config.cache_dir:
            self.core.set_property("", {"CACHE_DIR": config.cache_dir})
        if config.extra.get("cpu_extension"):
            self.core.add_extension(config.extra["cpu_extension"])
        self.completions = CompletionDispatcher()
        self.registry = ModelRegistry(self.completions, self.core)
        self.dataplane = DataPlane(self.registry)
        self.dataplane.metrics.configure(config.metrics_enable, select_families(config.metrics_list))
        self.reloader = ConfigReloader(self.registry, config.config_path, config.repository, config.models,
                                       echo=config.echo)
        self.dataplane.reload_config = self._reload_config  # TFS HandleReloadConfigRequest
        self.sequence_cleaner = SequenceCleaner(self.registry, config.sequence_cleaner_poll_wait_minutes * 60)
        self._stop = asyncio.Event()
        self._grpc: GrpcFrontend | None = None
        self._rest_runner: web.AppRunner | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.completions.attach(loop)
        cfg = self.config
        if cfg.port:
            handlers = {**KServeService(self.dataplane).handlers(), **TfsService(self.dataplane).handlers()}
            metrics = self.dataplane.metrics
            # the native front-end reports the requests it fails only when they would be logged
            on_failure = self.dataplane.log_failure if self.dataplane.logs_failures() else None
            addresses = grpc_addresses(cfg.grpc_bind_address, cfg.port)
            self._grpc = GrpcFrontend(handlers, self.registry.routes, addresses,
                                      kserve_route=metrics.route_kserve_grpc_infer,
                                      tfs_route=metrics.route_tfs_grpc_predict,
                                      memory_quota=cfg.grpc_memory_quota or 0,
                                      channel_args=cfg.extra.get("grpc_channel_arguments"),
                                      on_failure=on_failure)
            try:
                bound = self._grpc.start(loop)
            except OSError:
                self._grpc = None
                raise
            log.info("Started gRPC server on %s", ", ".join(bound))
        if cfg.rest_port:
            # /v1/config comes from the lifecycle routes (status + reload); TFS adds /v1/models...
            tfs = [r for r in tfs_routes(self.dataplane) if r[1] != "/v1/config"]
            app = build_rest_app(self.dataplane, config_routes(self.registry, self.reloader) + tfs
                                 + [metrics_route(self.dataplane.metrics)], cors=cfg.extra.get("cors"))
            self._rest_runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                              shutdown_timeout=SHUTDOWN_GRACE_S)
            await self._rest_runner.setup()
            for host in cfg.rest_bind_address.split(","):
                site = web.TCPSite(self._rest_runner, host.strip(), cfg.rest_port, backlog=1024)
                await site.start()
            log.info("Started REST server on %s:%d", cfg.rest_bind_address, cfg.rest_port)
        await self.reloader.start()
        self.reloader.watch(cfg.file_system_poll_wait_seconds)
        self.sequence_cleaner.start()
        self.dataplane.ready = True
        log.info("Server ready: %d model(s): %s", len(self.registry.models), ", ".join(sorted(self.registry.models)))

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
        if self._rest_runner is not None:
            tasks.append(self._rest_runner.cleanup())
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.reloader.stop()
        await self.sequence_cleaner.stop()
        await self.registry.unload_all()
        self.completions.detach()
        log.info("Server stopped")


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
