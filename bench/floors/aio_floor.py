"""``python -m bench.floors.aio_floor DIR``: the grpc.aio floor, a KServe gRPC endpoint doing nothing.

A grpc.aio server (on uvloop when installed, as ovfast's grpc.aio server was) that answers every call
by replaying the canned response bytes of its method path (``bench/floors/canned.py``): one generic
handler, identity (de)serializers, no protobuf parsing. Unknown paths get UNIMPLEMENTED. It binds
127.0.0.1 on an ephemeral port and prints ``listening on <port>``; SIGTERM stops it.
"""
from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import grpc

from bench.floors.canned import load

MAX_MESSAGE = 1 << 30  # ovfast's gRPC message limit


class Replay(grpc.GenericRpcHandler):
    def __init__(self, canned: dict[str, bytes]) -> None:
        self._handlers = {method: self._handler(body) for method, body in canned.items()}

    @staticmethod
    def _handler(body: bytes) -> grpc.RpcMethodHandler:
        async def unary(request: bytes, context) -> bytes:
            return body

        # no request_deserializer / response_serializer: bytes in, bytes out
        return grpc.unary_unary_rpc_method_handler(unary)

    def service(self, handler_call_details):
        return self._handlers.get(handler_call_details.method)


async def serve(directory: Path) -> None:
    server = grpc.aio.server(options=[("grpc.max_send_message_length", MAX_MESSAGE),
                                      ("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Replay(load(directory)),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.floors.aio_floor CANNED_DIR", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(Path(argv[0])))
    else:
        print(f"event loop: uvloop {uvloop.__version__}", flush=True)
        uvloop.run(serve(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
