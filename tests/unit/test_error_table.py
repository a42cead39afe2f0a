"""The one error table: every native code maps to one exception, one gRPC status and one HTTP status,
and both transports use it (walked through the native gRPC server — its own answers and the Python
handlers' — and the REST error path)."""
from __future__ import annotations

import asyncio

import grpc
import orjson
import pytest

from ovfast import _native
from ovfast.api.grpc.frontend import GrpcFrontend
from ovfast.api.grpc.server import typed
from ovfast.api.rest.app import error_response
from ovfast.errors import ERROR_TABLE, OvfastError, error_from_code, mapping_for
from ovfast._gen.kserve import grpc_predict_v2_pb2 as pb

# status.hpp's StatusCode values, OK excluded; then the transports' own (access errors)
NATIVE_CODES = [*range(1, 12), 14]
TRANSPORT_CODES = range(12, 14)
ROWS = sorted(ERROR_TABLE.values(), key=lambda m: m.code)
NATIVE_ROWS = [m for m in ROWS if m.code in NATIVE_CODES]


def test_every_native_code_has_a_row():
    assert sorted(ERROR_TABLE) == sorted([*NATIVE_CODES, *TRANSPORT_CODES])
    assert len({m.exception for m in ROWS}) == len(ROWS)


def test_transport_errors_are_ovfast_errors():
    for code in TRANSPORT_CODES:
        row = ERROR_TABLE[code]
        assert issubclass(row.exception, OvfastError) and row.exception.code == code
        assert mapping_for(row.exception("x")) is row
    assert (ERROR_TABLE[12].grpc_status, ERROR_TABLE[12].http_status) == (grpc.StatusCode.PERMISSION_DENIED, 403)
    assert (ERROR_TABLE[13].grpc_status, ERROR_TABLE[13].http_status) == (grpc.StatusCode.UNAUTHENTICATED, 401)


def test_not_found_means_only_missing_models():
    (row,) = [m for m in ROWS if m.grpc_status == grpc.StatusCode.NOT_FOUND]
    assert row.exception is _native.NotFoundError and row.http_status == 404


@pytest.mark.parametrize("row", NATIVE_ROWS, ids=lambda m: m.exception.__name__)
def test_native_raise_maps_to_row(row):
    with pytest.raises(OvfastError) as info:
        _native._raise_status(row.code, "boom")
    assert type(info.value) is row.exception
    assert info.value.code == row.code
    assert str(info.value) == "boom"
    assert mapping_for(info.value) is row
    assert type(error_from_code(row.code, "x")) is row.exception


@pytest.mark.parametrize("row", ROWS, ids=lambda m: m.exception.__name__)
def test_rest_status_for_row(row):
    resp = error_response(row.exception("bad thing"))
    assert resp.status == row.http_status
    assert orjson.loads(resp.body) == {"error": "bad thing"}


def test_unexpected_exceptions_are_internal():
    assert mapping_for(RuntimeError("x")).code == 9


def test_native_grpc_codes_are_the_table():
    """The native front-end answers some errors itself (grpc_status.hpp): with the table's codes."""
    for row in NATIVE_ROWS:
        assert _native.grpc_status_code(row.code) == row.grpc_status.value[0]


@pytest.mark.parametrize("raw", [b"plain", b"caf\xc3\xa9", b"a\xffb", b"\xe2\x82A", b"\xc0\xaf", b"\xed\xa0\x80",
                                 b"\xf4\x90\x80\x80", b"\xf0\x9f\x99"])
def test_native_messages_are_written_as_python_writes_them(raw):
    assert _native.printable_message(raw) == raw.decode("utf-8", "backslashreplace")


def test_grpc_status_for_every_row():
    """The native gRPC server forwards to a handler that raises each error; a real client sees the mapped status."""

    async def main():
        async def fail(request):
            raise ERROR_TABLE[int(request.name)].exception(f"code {request.name}")

        method = "/inference.GRPCInferenceService/ModelReady"
        frontend = GrpcFrontend({method: typed(fail, pb.ModelReadyRequest)}, _native.RouteTable(), ["127.0.0.1:0"])
        (address,) = frontend.start(asyncio.get_running_loop())
        seen = {}
        async with grpc.aio.insecure_channel(address) as ch:
            call = ch.unary_unary(method, request_serializer=pb.ModelReadyRequest.SerializeToString,
                                  response_deserializer=pb.ModelReadyResponse.FromString)
            for row in ROWS:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(pb.ModelReadyRequest(name=str(row.code)))
                seen[row.code] = (info.value.code(), info.value.details())
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary(method)(b"\xff\xff")  # not a ModelReadyRequest
            seen["undecodable"] = (info.value.code(), info.value.details())
        await frontend.stop(1)
        return seen

    seen = asyncio.run(main())
    for row in ROWS:
        assert seen[row.code] == (row.grpc_status, f"code {row.code}")
    # a request that is not the method's message is the client's mistake (issue 14 point 9)
    assert seen["undecodable"] == (grpc.StatusCode.INVALID_ARGUMENT,
                                   "Invalid request: not a valid inference.ModelReadyRequest message")
