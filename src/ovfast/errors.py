"""The error model: one exception per native status code, and the only table
that maps codes to gRPC and HTTP statuses."""
from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from ovfast import _native

OvfastError = _native.OvfastError
InvalidArgumentError = _native.InvalidArgumentError
NotFoundError = _native.NotFoundError
UnavailableError = _native.UnavailableError
AlreadyExistsError = _native.AlreadyExistsError
UnsupportedError = _native.UnsupportedError
ResourceExhaustedError = _native.ResourceExhaustedError
DeadlineExceededError = _native.DeadlineExceededError
CancelledError = _native.CancelledError
InternalError = _native.InternalError
UnknownError = _native.UnknownError
FailedPreconditionError = _native.FailedPreconditionError
AbortedError = _native.AbortedError


# Access errors: raised by the transports only (the native core never returns them), so they are Python
# classes under the same base, with codes after status.hpp's.
class PermissionDeniedError(OvfastError):
    """The endpoint exists but is disabled on this server (--disable_model_control)."""

    code = 12


class UnauthenticatedError(OvfastError):
    """The request lacks the API key (--api_key_file)."""

    code = 13


@dataclass(frozen=True)
class ErrorMapping:
    code: int
    exception: type
    grpc_status: grpc.StatusCode
    http_status: int


# code -> (exception, gRPC status, HTTP status). Codes 1-11 and 14 mirror native/include/ovfast/status.hpp;
# 12-13 are the transports' own (above).
ERROR_TABLE: dict[int, ErrorMapping] = {
    m.code: m
    for m in (
        ErrorMapping(1, InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT, 400),
        ErrorMapping(2, NotFoundError, grpc.StatusCode.NOT_FOUND, 404),
        ErrorMapping(3, UnavailableError, grpc.StatusCode.UNAVAILABLE, 503),
        ErrorMapping(4, AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS, 409),
        ErrorMapping(5, UnsupportedError, grpc.StatusCode.UNIMPLEMENTED, 501),
        # overload (a full model queue, request memory): 503, so HTTP clients and balancers retry elsewhere
        ErrorMapping(6, ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED, 503),
        ErrorMapping(7, DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        ErrorMapping(8, CancelledError, grpc.StatusCode.CANCELLED, 499),
        ErrorMapping(9, InternalError, grpc.StatusCode.INTERNAL, 500),
        ErrorMapping(10, UnknownError, grpc.StatusCode.UNKNOWN, 500),
        ErrorMapping(11, FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION, 412),
        ErrorMapping(12, PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED, 403),
        ErrorMapping(13, UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED, 401),
        # a pipeline whose demultiplexer had no results: OVMS answers ABORTED / 204 No Content
        ErrorMapping(14, AbortedError, grpc.StatusCode.ABORTED, 204),
    )
}
_BY_CLASS = {m.exception: m for m in ERROR_TABLE.values()}


class InsufficientMemoryError(ResourceExhaustedError):
    """A model load that does not fit in ``--memory_budget`` even after unloading every idle version:
    RESOURCE_EXHAUSTED on gRPC, and 507 Insufficient Storage on REST (429 would tell clients that
    they are sending too much, which retrying cannot fix)."""


_BY_CLASS[InsufficientMemoryError] = ErrorMapping(6, InsufficientMemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED, 507)


def mapping_for(exc: BaseException) -> ErrorMapping:
    """The table row for an exception; anything not an OvfastError is INTERNAL."""
    for cls in type(exc).__mro__:
        m = _BY_CLASS.get(cls)
        if m is not None:
            return m
    return ERROR_TABLE[9]


# Error messages quote client strings (names, shapes): bounded, so a 1 MB name cannot make the answer
# itself fail (gRPC status metadata has a hard size limit).
MAX_CLIENT_MESSAGE = 1024


# An absolute filesystem path (two components or more, not part of a URL such as s3://b/k).
_ABS_PATH = re.compile(r"(?<![\w:/.~-])(?:/[^\s/'\"(),;:]+){2,}/?")


def hide_paths(text: str) -> str:
    """``text`` with absolute filesystem paths cut to their last component (".../model.xml"): clients
    learn which file, not where the server keeps it. The server's log keeps the whole message."""
    return _ABS_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def client_message(exc: BaseException) -> str:
    """The message a client gets for ``exc``: its text without absolute paths, cut to
    MAX_CLIENT_MESSAGE characters."""
    text = hide_paths(str(exc))
    if len(text) <= MAX_CLIENT_MESSAGE:
        return text
    return text[:MAX_CLIENT_MESSAGE] + f"... ({len(text) - MAX_CLIENT_MESSAGE} more characters)"


def error_from_code(code: int, message: str) -> OvfastError:
    m = ERROR_TABLE.get(code, ERROR_TABLE[10])
    return m.exception(message)


# OVMS messages for routing errors (spec/ovms.md 3.7).
MODEL_NAME_MISSING = "Model with requested name is not found"
MODEL_VERSION_MISSING = "Model with requested version is not found"
MODEL_VERSION_NOT_LOADED_YET = "Model with requested version is not loaded yet"
MODEL_VERSION_NOT_LOADED_ANYMORE = "Model with requested version is retired"
MODEL_VERSION_INVALID_FORMAT = "invalid model version format in request"
PIPELINE_NOT_LOADED_YET = "Pipeline is not loaded yet"  # UNAVAILABLE
PIPELINE_NOT_LOADED_ANYMORE = "Pipeline is retired"  # NOT_FOUND

# OVMS messages of stateful models (spec/ovms.md §5), with the code each travels with. The native side words
# the request errors itself (native/include/ovfast/sched/sequence.hpp, sequence_messages); tests compare both.
SEQUENCE_MISSING = "Sequence with provided ID does not exist"  # NOT_FOUND
SEQUENCE_ALREADY_EXISTS = "Sequence with provided ID already exists"  # ALREADY_EXISTS
SEQUENCE_TERMINATED = "Sequence last request is being processed and it's not available anymore"  # FAILED_PRECONDITION
MAX_SEQUENCE_NUMBER_REACHED = "Max sequence number has been reached. Could not create new sequence."  # UNAVAILABLE
SEQUENCE_ID_NOT_PROVIDED = "Sequence ID has not been provided in request inputs"  # INVALID_ARGUMENT, as the rest
INVALID_SEQUENCE_CONTROL_INPUT = "Unexpected value of sequence control input"
SEQUENCE_ID_BAD_TYPE = "Could not find sequence id in expected tensor proto field uint64_val"
SEQUENCE_CONTROL_INPUT_BAD_TYPE = "Could not find sequence control input in expected tensor proto field uint32_val"
SPECIAL_INPUT_NO_TENSOR_SHAPE = "Special input proto does not contain tensor shape information"
SEQUENCE_ERRORS: dict[str, int] = {
    SEQUENCE_MISSING: 2, SEQUENCE_ALREADY_EXISTS: 4, SEQUENCE_TERMINATED: 11, MAX_SEQUENCE_NUMBER_REACHED: 3,
    SEQUENCE_ID_NOT_PROVIDED: 1, INVALID_SEQUENCE_CONTROL_INPUT: 1, SEQUENCE_ID_BAD_TYPE: 1,
    SEQUENCE_CONTROL_INPUT_BAD_TYPE: 1, SPECIAL_INPUT_NO_TENSOR_SHAPE: 1,
}
# ... and of their configuration (a model entry refused, or a reload not applied)
REQUESTED_DYNAMIC_PARAMETERS_ON_STATEFUL_MODEL = "Dynamic shape and dynamic batch size are not supported for stateful models"
REQUESTED_STATEFUL_PARAMETERS_ON_SUBSCRIBED_MODEL = "Stateful model cannot be subscribed to pipeline"
REQUESTED_MODEL_TYPE_CHANGE = "Model type cannot be changed after it is loaded"
INVALID_NON_STATEFUL_MODEL_PARAMETER = "Stateful model config parameter used for non stateful model"
INVALID_MAX_SEQUENCE_NUMBER = "Sequence max number parameter too high"


_OV_FRAME = re.compile(r"Exception from \S+:\d+:\s*")


def one_line(message: str) -> str:
    """An error message fit for one log line: OpenVINO's "Exception from <file>:<line>:" frames
    are dropped and the lines that remain are joined."""
    return " ".join(_OV_FRAME.sub("", message).split())
