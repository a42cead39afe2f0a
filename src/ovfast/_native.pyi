# Stub for the compiled module (generated with pybind11-stubgen; tests/unit/test_native_stub.py checks it with mypy.stubtest).
"""
ovfast native core: KServe codec, infer-request pools, completion queue
"""
from __future__ import annotations
import collections.abc
import numpy
import typing
import typing_extensions
class OvfastError(Exception):
    pass
class InvalidArgumentError(OvfastError):
    code: typing.ClassVar[int] = 1
class NotFoundError(OvfastError):
    code: typing.ClassVar[int] = 2
class UnavailableError(OvfastError):
    code: typing.ClassVar[int] = 3
class AlreadyExistsError(OvfastError):
    code: typing.ClassVar[int] = 4
class UnsupportedError(OvfastError):
    code: typing.ClassVar[int] = 5
class ResourceExhaustedError(OvfastError):
    code: typing.ClassVar[int] = 6
class DeadlineExceededError(OvfastError):
    code: typing.ClassVar[int] = 7
class CancelledError(OvfastError):
    code: typing.ClassVar[int] = 8
class InternalError(OvfastError):
    code: typing.ClassVar[int] = 9
class UnknownError(OvfastError):
    code: typing.ClassVar[int] = 10
class FailedPreconditionError(OvfastError):
    code: typing.ClassVar[int] = 11
class AbortedError(OvfastError):
    code: typing.ClassVar[int] = 14
class Core:
    def __init__(self) -> None:
        ...
    def add_extension(self, path: str) -> None:
        """
        Loads an OpenVINO extension library (--cpu_extension). Releases the GIL.
        """
    def set_property(self, arg0: str, arg1: dict) -> None:
        """
        Sets core properties (e.g. CACHE_DIR). Releases the GIL.
        """
class CompletionQueue:
    def __init__(self) -> None:
        ...
    def drain(self) -> list:
        """
        Takes every finished job: [(context, code, message, payload, infer_us, wait_us)]. payload is bytes (KServe response) or [(name, datatype, shape, ndarray|list[bytes])].
        """
    def fileno(self) -> int:
        ...
class ManualClock:
    """
    A clock that moves only when told (dynamic-batching tests).
    """
    def __init__(self) -> None:
        ...
    def advance_us(self, us: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Moves the clock forward and returns once every batcher on it has acted on the new time (dispatched what became due). Releases the GIL.
        """
    @property
    def now_ns(self) -> int:
        ...
class KServeRequest:
    def cancel(self) -> None:
        """
        The client went away: drops the job if it has not started.
        """
    @property
    def buffer_address(self) -> int:
        ...
    @property
    def buffer_size(self) -> int:
        ...
    @property
    def id(self) -> str:
        ...
    @property
    def input_addresses(self) -> list[int]:
        """
        Where each input's data starts (0 for BYTES): proves zero-copy in tests.
        """
    @property
    def input_shapes(self) -> dict:
        """
        {input name: shape} as parsed; readable until the request is submitted.
        """
    @property
    def model_name(self) -> str:
        ...
    @property
    def model_version(self) -> str:
        ...
class _BufferSet:
    def cancel(self) -> None:
        """
        The client went away: the job is dropped (answered CANCELLED, counted as failed) if it has not started; one that runs is answered as usual.
        """
class ModelOptions:
    """
    Every knob of one model version, validated by the config layer.
    """
    def __init__(self) -> None:
        ...
    @property
    def batch_size(self) -> tuple[int, int] | None:
        """
        (min, max) for dim 0 of every input, or None; `shapes` wins over it.
        """
    @batch_size.setter
    def batch_size(self, arg1: tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex] | None) -> None:
        ...
    @property
    def color_format(self) -> str:
        ...
    @color_format.setter
    def color_format(self, arg0: str) -> None:
        ...
    @property
    def device(self) -> str:
        ...
    @device.setter
    def device(self, arg0: str) -> None:
        ...
    @property
    def echo(self) -> bool:
        """
        Transport floor: no inference, outputs echo inputs.
        """
    @echo.setter
    def echo(self, arg0: bool) -> None:
        ...
    @property
    def low_latency_transformation(self) -> bool:
        """
        Apply OpenVINO's LowLatency2 before compiling (stateful).
        """
    @low_latency_transformation.setter
    def low_latency_transformation(self, arg0: bool) -> None:
        ...
    @property
    def max_sequence_number(self) -> int:
        """
        Live sequences at most (stateful).
        """
    @max_sequence_number.setter
    def max_sequence_number(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def stateful(self) -> bool:
        """
        Requests come in sequences that keep the model's state.
        """
    @stateful.setter
    def stateful(self, arg0: bool) -> None:
        ...
    @property
    def input_names(self) -> dict[str, str]:
        """
        mapping_config.json: {model name: served name}
        """
    @input_names.setter
    def input_names(self, arg0: collections.abc.Mapping[str, str]) -> None:
        ...
    @property
    def layouts(self) -> dict[str, str]:
        """
        {name: 'NHWC:NCHW' or 'NHWC'}
        """
    @layouts.setter
    def layouts(self, arg0: collections.abc.Mapping[str, str]) -> None:
        ...
    @property
    def max_batch_size(self) -> int:
        """
        Dynamic batching: rows per batch; 0 = off.
        """
    @max_batch_size.setter
    def max_batch_size(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def max_queue_delay_us(self) -> int:
        ...
    @max_queue_delay_us.setter
    def max_queue_delay_us(self, arg1: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def max_queue_size(self) -> int:
        """
        Jobs queued (waiting for an infer request or a batch) beyond which submit refuses; 0 = no bound.
        """
    @max_queue_size.setter
    def max_queue_size(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def mean(self) -> list[float]:
        ...
    @mean.setter
    def mean(self, arg0: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
    @property
    def model_path(self) -> str:
        ...
    @model_path.setter
    def model_path(self, arg0: str) -> None:
        ...
    @property
    def nireq(self) -> int:
        """
        Infer requests; 0 = OpenVINO's optimal number.
        """
    @nireq.setter
    def nireq(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def output_names(self) -> dict[str, str]:
        ...
    @output_names.setter
    def output_names(self, arg0: collections.abc.Mapping[str, str]) -> None:
        ...
    @property
    def plugin_config(self) -> dict[str, str]:
        """
        {key: value}, passed to compile_model as is.
        """
    @plugin_config.setter
    def plugin_config(self, arg0: collections.abc.Mapping[str, str]) -> None:
        ...
    @property
    def preferred_batch_sizes(self) -> list[int]:
        ...
    @preferred_batch_sizes.setter
    def preferred_batch_sizes(self, arg1: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    @property
    def scale(self) -> list[float]:
        ...
    @scale.setter
    def scale(self, arg0: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex]) -> None:
        ...
    @property
    def shapes(self) -> dict[str, list[tuple[int, int]]]:
        """
        {input name ('' = the only input): [(min, max), ...]}; max -1 = unbounded, min == max static.
        """
    @shapes.setter
    def shapes(self, arg1: collections.abc.Mapping[str, collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex]]]) -> None:
        ...
def memory_sample() -> tuple:
    """
    (resident set size, allocator bytes in use) of this process, bytes.
    """
def resident_bytes() -> int:
    """
    Resident set size of this process, bytes (/proc/self/statm; takes no allocator lock).
    """
def release_free_memory() -> None:
    """
    Returns free allocator memory to the system (malloc_trim). Releases the GIL.
    """
class Servable:
    def __init__(self, core: Core, options: ModelOptions, queue: CompletionQueue, clock: ManualClock | None = None) -> None:
        """
        Reads and compiles the model (blocking; releases the GIL). Results of submitted jobs arrive through `queue`. `clock`: a ManualClock for dynamic-batching tests, else the steady clock.
        """
    def count(self, route: typing.SupportsInt | typing.SupportsIndex, ok: bool, duration_us: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Counts one request on `route` that did not go through submit (metadata calls, failures before submit).
        """
    def drain(self) -> None:
        """
        Blocks until nothing is decoding, queued or running. Releases the GIL.
        """
    def flush(self) -> None:
        """
        From now on, batches start without waiting out the queue delay (shutdown). Non-blocking.
        """
    def metrics(self) -> dict:
        """
        Scrape-time read of the request metrics: {success, fail: [per route], current_requests, inference_us, wait_us: (per-bucket counts incl. +Inf, sum_us), request_us: (gRPC, REST) histograms, batch_size: (counts over BATCH_SIZE_BOUNDS, sum of rows), batch_queue_delay_us, batch_copied_bytes: input bytes copied into batch tensors, rejected_queue_full: jobs refused by max_queue_size}. Bucket counts are per bucket, not cumulative.
        """
    def record_failure(self, received_ns: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Counts a request for this version that failed before submit (Triton statistics); `received_ns` is time.monotonic_ns() at receipt.
        """
    def sequence_stats(self) -> tuple:
        """
        (live sequences, bytes of their saved state); zeros for a model that is not stateful.
        """
    def statistics(self) -> dict:
        """
        Triton statistics of this version, counted natively on every path: {success_count, success_ns, fail_count, fail_ns, queue_ns, compute_ns, inference_count, execution_count, last_inference_ms}.
        """
    def submit_kserve(self, request: typing.Any, version: str, context: typing.Any, route: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
        """
        Starts inference for a parsed request; the serialized ModelInferResponse arrives through the CompletionQueue with `context`. Raises on validation errors. `route` (metrics) counts the request natively. Releases the GIL while starting.
        """
    def submit_tensors(self, inputs: list, outputs: typing.Any, context: typing.Any, route: typing.SupportsInt | typing.SupportsIndex = -1, received_ns: typing.SupportsInt | typing.SupportsIndex = 0, sequence: typing.Any = None) -> typing.Any:
        """
        Starts inference on [(name, datatype, shape, buffer)]; buffers are used in place (pinned until completion). `route` counts the request natively; `received_ns` (time.monotonic_ns() at receipt) starts its request-time clock. `sequence`: (id: int | str, start: bool, end: bool) from KServe request parameters, or None. Returns the job's keepalive, whose cancel() drops the job if it has not started. Releases the GIL while starting.
        """
    def sweep_idle_sequences(self) -> int:
        """
        One pass of the idle-sequence cleaner: removes the sequences flagged idle by the previous pass and flags the others (a request clears the flag). Returns how many were removed; 0 for a model that is not stateful. Releases the GIL.
        """
    @property
    def active(self) -> int:
        ...
    @property
    def inputs(self) -> list:
        ...
    @property
    def in_flight(self) -> int:
        """
        Jobs decoding, queued or running on this version (0: an unload cuts nothing off).
        """
    @property
    def max_batch_size(self) -> int:
        """
        Rows per batch when dynamic batching is on; 0 when it is off.
        """
    @property
    def memory_bytes(self) -> int:
        """
        What loading this version cost in memory (read + compile + infer requests), measured around the load: bytes.
        """
    @property
    def nireq(self) -> int:
        ...
    @property
    def outputs(self) -> list:
        ...
    @property
    def queued(self) -> int:
        ...
    @property
    def streams(self) -> int:
        ...
    @staticmethod
    def pipeline(name: str, nodes: list, outputs: list, inputs_info: list, outputs_info: list, queue: CompletionQueue) -> Servable:
        """
        A pipeline served like a model.
        """
    @property
    def is_pipeline(self) -> bool:
        ...
class NodeLibrary:
    def __init__(self, path: str) -> None:
        """
        Loads the library and its six entry points; FailedPreconditionError otherwise. Releases the GIL.
        """
    @property
    def path(self) -> str:
        ...
class CustomNode:
    def __init__(self, library: NodeLibrary, params: collections.abc.Mapping[str, str]) -> None:
        """
        Calls initialize(params) and reads the declared tensors. Releases the GIL.
        """
    @property
    def inputs(self) -> list:
        ...
    @property
    def outputs(self) -> list:
        ...
class TfsPredictRequest:
    def cancel(self) -> None:
        """
        The client went away: drops the job if it has not started.
        """
    @property
    def buffer_address(self) -> int:
        ...
    @property
    def buffer_size(self) -> int:
        ...
    @property
    def has_model_spec(self) -> bool:
        ...
    @property
    def input_addresses(self) -> list[int]:
        """
        Where each input's data starts (0 for strings): proves zero-copy in tests.
        """
    @property
    def input_names(self) -> list[str]:
        ...
    @property
    def input_shapes(self) -> dict:
        """
        {input name: shape} as parsed; readable until the request is submitted.
        """
    @property
    def model_name(self) -> str:
        ...
    @property
    def model_version(self) -> int:
        """
        model_spec.version.value; 0 when absent (= default version).
        """
    @property
    def signature_name(self) -> str:
        ...
class RouteTable:
    """
    Which servable the native gRPC front-end runs (model, version) on; published by Python.
    """
    def __init__(self) -> None:
        ...
    def find(self, name: str, version: typing.SupportsInt | typing.SupportsIndex) -> int | None:
        """
        The version a native request for (name, version) runs on (0 = default); None: forwarded to Python.
        """
    def publish(self, name: str, needs_control_plane: bool, default_version: typing.SupportsInt | typing.SupportsIndex, versions: list) -> None:
        """
        Replaces the model's routes: versions = [(version, Servable)], AVAILABLE ones; default_version 0 = none. Raises InvalidArgumentError for an inconsistent route. Releases the GIL.
        """
    def remove(self, name: str) -> None:
        """
        Drops the model's routes. Releases the GIL.
        """
    @property
    def size(self) -> int:
        ...
class ForwardQueue:
    """
    Calls the native gRPC front-end hands to the Python handlers, and their answers.
    """
    def __init__(self) -> None:
        ...
    def close(self, code: typing.SupportsInt | typing.SupportsIndex, message: str) -> None:
        """
        Refuses new calls and answers the pending ones with this status. Releases the GIL.
        """
    def drain(self) -> tuple:
        """
        Takes everything queued: ([(call_id, method path, request bytes)], [(model, version, message)] of the requests the native front-end failed, [call_id] of pending calls their clients cancelled or whose deadline passed).
        """
    def fileno(self) -> int:
        ...
    def respond(self, call_id: typing.SupportsInt | typing.SupportsIndex, code: typing.SupportsInt | typing.SupportsIndex, message: str, response: bytes) -> bool:
        """
        Answers a call: gRPC status code (0 = OK, with `response`), message. False when it is no longer pending. Releases the GIL.
        """
    @property
    def forwarded(self) -> int:
        ...
    @property
    def pending(self) -> int:
        ...
class RequestMemory:
    """
    The server-wide bound on bytes held by requests in flight (--max_request_memory).
    """
    def __init__(self, limit_bytes: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        limit_bytes 0: no bound (still counted).
        """
    def release(self, bytes: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    def try_reserve(self, bytes: typing.SupportsInt | typing.SupportsIndex) -> bool:
        """
        Takes `bytes` if the total stays within the limit; False (counted as refused) otherwise.
        """
    @property
    def in_use(self) -> int:
        ...
    @property
    def limit(self) -> int:
        ...
    @property
    def refused(self) -> int:
        ...

class GrpcServer:
    """
    The gRPC port (grpc++ callback API).
    """
    def __init__(self, addresses: collections.abc.Sequence[str], routes: RouteTable, forward: ForwardQueue, forwarded_methods: collections.abc.Sequence[str], kserve_route: typing.SupportsInt | typing.SupportsIndex = -1, tfs_route: typing.SupportsInt | typing.SupportsIndex = -1, report_failures: bool = False, max_message_bytes: typing.SupportsInt | typing.SupportsIndex = 1073741824, memory_quota: typing.SupportsInt | typing.SupportsIndex = 0, int_args: collections.abc.Mapping[str, typing.SupportsInt | typing.SupportsIndex] = {}, string_args: collections.abc.Mapping[str, str] = {}, tls_cert: str = '', tls_key: str = '', tls_ca: str = '', api_key: str = '', request_memory: RequestMemory | None = None, workers: typing.SupportsInt | typing.SupportsIndex = 1, max_threads: typing.SupportsInt | typing.SupportsIndex = 0, serve_inference: bool = True, model_id_headers: bool = False) -> None:
        """
        tls_cert/tls_key: PEM texts that turn TLS on; tls_ca: PEM CA bundle that makes client certificates required and verified; api_key: every call but ServerLive/ServerReady needs the metadata 'authorization: Bearer <api_key>'. workers: server instances sharing the port (SO_REUSEPORT); max_threads: gRPC's resource-quota thread bound (0: gRPC's default); serve_inference: ModelInfer/Predict run natively here (False: a server of forwarded methods only); model_id_headers: a call whose metadata names a model (mm-model-id, mm-vmodel-id) runs on it. An address is host:port or unix:/path.
        """
    def shutdown(self, grace_s: typing.SupportsFloat | typing.SupportsIndex) -> None:
        """
        Stops accepting, lets calls finish for up to grace_s, then cancels the rest; returns when every call is finished. Blocking (forwarded calls still need the event loop: run it in an executor). Releases the GIL.
        """
    def start(self) -> list[int]:
        """
        Binds and serves; returns the port bound for each address. Raises UnavailableError when an address cannot be bound. Releases the GIL.
        """
    def stats(self) -> dict:
        """
        {native_calls, forwarded_calls, joined_messages, joined_bytes} since start.
        """
def _raise_status(arg0: typing.SupportsInt | typing.SupportsIndex, arg1: str) -> None:
    """
    Raises the exception registered for `code` (used by the error-table test).
    """
def datatypes() -> list:
    """
    The one datatype table: [(kserve_name, tf_name, tf_enum, triton_config, element_size, numpy_dtype)]; element_size 0 and numpy dtype object for BYTES; BF16 travels as raw uint16 bits.
    """
def decode_image(data: typing_extensions.Buffer, color_format: str = 'BGR') -> numpy.ndarray:
    """
    Decodes one JPEG or PNG into a uint8 HWC array (channels 1, 3 or 4; colour in `color_format` order). Raises InvalidArgumentError for anything that is not a valid image. Releases the GIL.
    """
def decode_images(images: collections.abc.Sequence[str], shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], datatype: str = 'UINT8', color_format: str = 'BGR', max_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> numpy.ndarray:
    """
    Decodes a batch exactly as the server does for a model input of `shape` (NHWC, -1 = dynamic) and `datatype`: resize to H x W when needed, values 0..255 converted without scaling. Returns an [N, H, W, C] array. Releases the GIL.
    """
def encode_tfs_response(model_name: str, version: str, outputs: list) -> bytes:
    """
    Serializes a PredictResponse (used by tests; the server encodes in Servable completions).
    """
def grpc_status_code(code: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    The gRPC status code the native front-end sends for a native status code.
    """
def inject_model_id(method: str, model_id: str) -> bytes:
    """
    The bytes header routing appends to a forwarded request of `method` so that it names `model_id`.
    """
def openvino_runtime_version() -> str:
    """
    The version of the OpenVINO runtime library actually loaded.
    """
def set_decode_limits(max_inputs: int, max_outputs: int, max_dims: int, max_parameters: int) -> None:
    """
    Sets the process-wide request decoding limits (both wire codecs); call before serving.
    """
def decode_limits() -> dict:
    """
    The process-wide request decoding limits, as a dict.
    """
def string_tensor_bytes(buffer: typing.Any, name: str = '') -> int:
    """
    What BYTES elements packed as (4-byte little-endian length, bytes)* will hold as an OpenVINO string tensor (a std::string each, plus heap copies of long elements); InvalidArgumentError naming input `name` if malformed.
    """
def parse_kserve_request(buffer: typing.Any) -> KServeRequest:
    """
    Parses serialized ModelInferRequest bytes without copying tensor data. Releases the GIL while parsing.
    """
def parse_tfs_predict_request(buffer: typing.Any) -> TfsPredictRequest:
    """
    Parses serialized tensorflow.serving.PredictRequest bytes; tensor_content is viewed, not copied. Raises InvalidArgumentError on malformed data. Releases the GIL while parsing.
    """
def printable_message(message: bytes) -> str:
    """
    A status message as the native front-end sends it (invalid UTF-8 as \\xNN).
    """
def submit_tfs(servable: Servable, request: typing.Any, version: str, context: typing.Any, route: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
    """
    Starts inference for a parsed PredictRequest; the serialized PredictResponse arrives through the CompletionQueue with `context`. Raises on validation errors. `route` (metrics) counts the request natively. Releases the GIL while starting.
    """
ABI_VERSION: int = 1
BATCH_SIZE_BOUNDS: list = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024]
HISTOGRAM_BOUNDS_US: list = [10, 18, 32, 58, 104, 188, 340, 612, 1101, 1983, 3570, 6426, 11568, 20822, 37481, 67466, 121439, 218591, 393464, 708235, 1274823, 2294682, 4130428, 7434771, 13382588, 24088659, 43359586, 78047255, 140485060, 252873108, 455171596, 819308872, 1474755971]
METRICS_ROUTE_COUNT: int = 12
OPENVINO_BUILD_VERSION: str = '2026.4.1-22982-e213a147257-releases/2026/4'
