"""What a request served through Python (REST) holds against ``--max_request_memory`` (the native
RequestMemory every port reserves from; the native gRPC port reserves in C++): its body, from
``Content-Length`` before the body is read (else once it is; rest/limits.py), then what its string inputs
will hold as OpenVINO string tensors, before they are made (DataPlane's TensorsRequest). Released when the
request is answered. A refusal is RESOURCE_EXHAUSTED (503), worded as the gRPC port words it."""
from __future__ import annotations

from ovfast import _native
from ovfast.errors import ResourceExhaustedError


class HeldMemory:
    def __init__(self, memory: _native.RequestMemory | None) -> None:
        self._memory = memory
        self.body = 0  # bytes held for the body
        self.held = 0  # bytes held in all

    def hold_body(self, size: int) -> str | None:
        """Holds ``size`` bytes for the body (once more than held); the refusal message, or None."""
        error = self._hold(size, "")
        if error is None:
            self.body = max(self.body, size)
        return error

    def add(self, extra: int, why: str) -> None:
        """Holds ``extra`` bytes beyond the body; raises ResourceExhaustedError when refused."""
        error = self._hold(self.body + extra, why)
        if error is not None:
            raise ResourceExhaustedError(error)

    def release(self) -> None:
        if self._memory is not None and self.held:
            self._memory.release(self.held)
        self.held = 0

    def _hold(self, total: int, why: str) -> str | None:
        memory = self._memory
        if memory is None or total <= self.held:
            return None
        if memory.try_reserve(total - self.held):
            self.held = total
            return None
        return (f"Server is overloaded: requests in flight hold {memory.in_use} bytes; this one needs "
                f"{total - self.held} more{why} (max_request_memory {memory.limit}); retry later")


def hold_strings(held: HeldMemory | None, inputs: list, string_inputs: set[str]) -> None:
    """Holds what the BYTES ``inputs`` ((name, datatype, shape, packed elements, ...)) that go to the
    ``string_inputs`` will hold as string tensors (a std::string each), before any is made."""
    if held is None:
        return
    cost = sum(_native.string_tensor_bytes(i[3], i[0]) for i in inputs if i[1] == "BYTES" and i[0] in string_inputs)
    if cost:
        held.add(cost, f" to hold its BYTES elements as strings ({cost} bytes)")
