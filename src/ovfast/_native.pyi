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
    def model_name(self) -> str:
        ...
    @property
    def model_version(self) -> str:
        ...
class _BufferSet:
    pass
class Servable:
    def __init__(self, core: Core, model_path: str, *, device: str = 'CPU', plugin_config: dict = {}, nireq: typing.SupportsInt | typing.SupportsIndex = 0, queue: CompletionQueue, shapes: collections.abc.Mapping[str, str] = {}, batch_size: str = '', echo: bool = False, layouts: collections.abc.Mapping[str, str] = {}, color_format: str = '', mean: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex] = [], scale: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex] = [], max_batch_size: typing.SupportsInt | typing.SupportsIndex = 0, max_queue_delay_us: typing.SupportsInt | typing.SupportsIndex = 0, preferred_batch_sizes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = [], clock: ManualClock | None = None, input_names: collections.abc.Mapping[str, str] = {}, output_names: collections.abc.Mapping[str, str] = {}) -> None:
        """
        Reads and compiles the model (blocking; releases the GIL). max_batch_size > 0 turns on dynamic batching (max_queue_delay_us, preferred_batch_sizes; `clock`: a ManualClock for tests, else the steady clock). input_names / output_names rename the model's tensors (model name -> public name, from mapping_config.json) before anything else.
        """
    def count(self, route: typing.SupportsInt | typing.SupportsIndex, ok: bool, duration_us: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Counts one request on `route` that did not go through submit (metadata calls, failures before submit).
        """
    def drain(self) -> None:
        """
        Blocks until nothing is queued or running. Releases the GIL.
        """
    def flush(self) -> None:
        """
        From now on, batches start without waiting out the queue delay (shutdown). Non-blocking.
        """
    def metrics(self) -> dict:
        """
        Scrape-time read of the request metrics: {success, fail: [per route], current_requests, inference_us, wait_us: (per-bucket counts incl. +Inf, sum_us), request_us: (gRPC, REST) histograms, batch_size: (counts over BATCH_SIZE_BOUNDS, sum of rows), batch_queue_delay_us, batch_copied_bytes: input bytes copied into batch tensors}. Bucket counts are per bucket, not cumulative.
        """
    def submit_kserve(self, request: typing.Any, version: str, context: typing.Any, route: typing.SupportsInt | typing.SupportsIndex = -1) -> None:
        """
        Starts inference for a parsed request; the result arrives through the CompletionQueue with `context`. Raises on validation errors. `route` (metrics) counts the request natively. Releases the GIL while starting.
        """
    def submit_tensors(self, inputs: list, outputs: typing.Any, context: typing.Any, route: typing.SupportsInt | typing.SupportsIndex = -1, received_ns: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        Starts inference on [(name, datatype, shape, buffer)]; buffers are used in place (pinned until completion). `route` counts the request natively; `received_ns` (time.monotonic_ns() at receipt) starts its request-time clock. Releases the GIL while starting.
        """
    @property
    def active(self) -> int:
        ...
    @property
    def inputs(self) -> list:
        ...
    @property
    def max_batch_size(self) -> int:
        """
        Rows per batch when dynamic batching is on; 0 when it is off.
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
class TfsPredictRequest:
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
def openvino_runtime_version() -> str:
    """
    The version of the OpenVINO runtime library actually loaded.
    """
def parse_kserve_request(buffer: typing.Any) -> KServeRequest:
    """
    Parses serialized ModelInferRequest bytes without copying tensor data. Releases the GIL while parsing.
    """
def parse_tfs_predict_request(buffer: typing.Any) -> TfsPredictRequest:
    """
    Parses serialized tensorflow.serving.PredictRequest bytes; tensor_content is viewed, not copied. Raises InvalidArgumentError on malformed data. Releases the GIL while parsing.
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
