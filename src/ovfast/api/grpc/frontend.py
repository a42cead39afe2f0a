"""The gRPC port: the native grpc++ server, and the dispatcher that runs the Python handlers for
the calls it forwards.

The native server (native/include/ovfast/transport/grpc_server.hpp) runs KServe ModelInfer and
TFS Predict itself when the route table (published by the registry) routes them; no Python runs
for those. Every other call is pushed onto a native forward queue whose eventfd this loop
watches: each call runs its handler (``method path -> async handler(bytes) -> bytes``) as a task,
and the answer — response bytes, or the gRPC status the error table gives what it raised — goes
back with ``respond``. The requests the native side failed come the same way, to be logged, and so
do the ids of forwarded inference calls whose client cancelled or whose deadline passed: their tasks
are cancelled. No native thread waits for Python or takes the GIL.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ovfast import _native
from ovfast.api.grpc.server import GRPC_MAX_MESSAGE, Handler
from ovfast.errors import OvfastError, UnavailableError, client_message, mapping_for
from ovfast.security import TlsFiles

log = logging.getLogger("ovfast.grpc")

_CANCELLED = 1  # grpc.StatusCode.CANCELLED
_UNIMPLEMENTED = 12
# Forwarded calls that stop when their client goes away (method paths end so): inferences only
INFER_METHODS = ("/inference.GRPCInferenceService/ModelInfer", "/tensorflow.serving.PredictionService/Predict")


def grpc_addresses(bind_addresses: str, port: int) -> list[str]:
    """``--grpc_bind_address`` (comma-separated hosts) and ``--port`` as gRPC listening addresses."""
    out = []
    for host in bind_addresses.split(","):
        host = host.strip()
        out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return out


def channel_arguments(text: str | None) -> tuple[dict[str, int], dict[str, str]]:
    """``--grpc_channel_arguments`` ("k=v,k=v") as (integer arguments, string arguments)."""
    ints: dict[str, int] = {}
    strings: dict[str, str] = {}
    for kv in (text or "").split(","):
        if not kv.strip():
            continue
        k, _, v = kv.partition("=")
        k, v = k.strip(), v.strip()
        if v.lstrip("-").isdigit():
            ints[k] = int(v)
        else:
            strings[k] = v
    return ints, strings


class GrpcFrontend:
    """The native gRPC server over ``routes``, with ``handlers`` answering what it forwards.

    Parameters
    ----------
    handlers : dict
        ``{"/package.Service/Method": async handler(request bytes) -> response bytes}``; a method
        not listed is answered UNIMPLEMENTED natively.
    routes : _native.RouteTable
        Where the native side looks up ModelInfer / Predict (ModelRegistry.routes).
    addresses : list of str
        Listening addresses (:func:`grpc_addresses`).
    kserve_route, tfs_route : int
        Metrics routes native jobs are counted under (-1: metrics off).
    memory_quota : int
        ``--grpc_memory_quota``: gRPC's resource quota for buffers, bytes; 0 = unlimited.
    workers, max_threads : int
        ``--grpc_workers`` (server instances sharing the port) and ``--grpc_max_threads`` (0: gRPC's default).
    channel_args : str or None
        ``--grpc_channel_arguments``.
    tls : TlsFiles or None
        ``--grpc_certificate_path`` & co.: TLS only (mutual TLS with a CA bundle); None: plaintext.
    request_memory : _native.RequestMemory or None
        The server-wide bound on bytes held by requests in flight; None: not counted.
    api_key : str
        When not empty, every call but the health ones needs ``authorization: Bearer <api_key>``.
    on_failure : callable or None
        ``on_failure(model, version, message)`` for each inference request the native side answered
        with an error (``DataPlane.log_failure``); None: not reported.
    serve_inference : bool
        ModelInfer / Predict run natively here; False for a port of forwarded methods only (ModelMesh's
        management endpoint).
    model_id_headers : bool
        Header routing: a call whose metadata names a model (``mm-model-id``, ``mm-vmodel-id``) runs on it.
    """

    def __init__(self, handlers: dict[str, Handler], routes: _native.RouteTable, addresses: list[str], *,
                 kserve_route: int = -1, tfs_route: int = -1, memory_quota: int = 0, workers: int = 1,
                 max_threads: int = 0,
                 channel_args: str | None = None, tls: TlsFiles | None = None, api_key: str = "",
                 request_memory: _native.RequestMemory | None = None,
                 on_failure: Callable[[str, int, str], None] | None = None, serve_inference: bool = True,
                 model_id_headers: bool = False) -> None:
        self.handlers = handlers
        self.addresses = addresses
        self.queue = _native.ForwardQueue()
        ints, strings = channel_arguments(channel_args)
        self.server = _native.GrpcServer(
            addresses, routes, self.queue, list(handlers), kserve_route=kserve_route, tfs_route=tfs_route,
            report_failures=on_failure is not None, max_message_bytes=GRPC_MAX_MESSAGE, memory_quota=memory_quota,
            workers=workers, max_threads=max_threads, serve_inference=serve_inference,
            model_id_headers=model_id_headers, int_args=ints, string_args=strings, api_key=api_key, request_memory=request_memory,
            **({} if tls is None else {"tls_cert": tls.cert_pem, "tls_key": tls.key_pem, "tls_ca": tls.ca_pem}))
        self._on_failure = on_failure
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._inferring: dict[int, asyncio.Task] = {}  # forwarded inference calls being answered, by call id

    def start(self, loop: asyncio.AbstractEventLoop) -> list[str]:
        """Binds and serves; returns the bound addresses. OSError when one cannot be bound."""
        self._loop = loop
        loop.add_reader(self.queue.fileno(), self._on_forwarded)
        try:
            ports = self.server.start()
        except UnavailableError as exc:
            loop.remove_reader(self.queue.fileno())
            self._loop = None
            raise OSError(str(exc)) from None
        return [a if a.startswith("unix:") else a.rsplit(":", 1)[0] + f":{p}" for a, p in zip(self.addresses, ports)]

    async def stop(self, grace_s: float) -> None:
        """Stops accepting calls and returns when every call is answered (those in flight get up to
        ``grace_s``). The loop keeps answering forwarded calls meanwhile."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.server.shutdown, grace_s)
        if self._loop is not None:
            self._loop.remove_reader(self.queue.fileno())
            self._loop = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        st = self.server.stats()
        log.info("gRPC calls: %d served natively, %d forwarded to Python; %d request(s) joined from several "
                 "slices (%d bytes copied)", st["native_calls"], st["forwarded_calls"], st["joined_messages"],
                 st["joined_bytes"])

    def stats(self) -> dict[str, int]:
        """The native server's call counters (see ``_native.GrpcServer.stats``)."""
        return self.server.stats()

    def _on_forwarded(self) -> None:
        assert self._loop is not None
        calls, failures, cancelled = self.queue.drain()
        if self._on_failure is not None:
            for model, version, message in failures:
                self._on_failure(model, int(version), message)
        for call_id, method, data in calls:
            task = self._loop.create_task(self._answer(call_id, method, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if method.endswith(INFER_METHODS):
                self._inferring[call_id] = task
                task.add_done_callback(lambda _t, i=call_id: self._inferring.pop(i, None))
        # The client of a forwarded inference cancelled it or its deadline passed: the task stops
        # waiting (DataPlane.infer drops its job if it has not started and counts it as failed). Other
        # calls run to the end: a reload or a load the client stopped waiting for still completes.
        for call_id in cancelled:
            task = self._inferring.get(call_id)
            if task is not None:
                task.cancel()

    async def _answer(self, call_id: int, method: str, data: bytes) -> None:
        code, message, body = 0, "", b""
        try:
            handler = self.handlers.get(method)
            if handler is None:
                code, message = _UNIMPLEMENTED, "Method not found!"
            else:
                body = await handler(data)
        except asyncio.CancelledError:
            code, message = _CANCELLED, "Cancelled"
            raise
        except Exception as exc:  # noqa: BLE001 - every error becomes a status
            m = mapping_for(exc)
            if not isinstance(exc, OvfastError):
                log.exception("Unexpected error in gRPC handler %s", method, exc_info=exc)
            code, message = m.grpc_status.value[0], client_message(exc)
        finally:
            self.queue.respond(call_id, code, message, body)
