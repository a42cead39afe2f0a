"""HeldMemory (api/held_memory.py): what a REST request holds against --max_request_memory, on the real
native RequestMemory the server shares between its ports."""
from __future__ import annotations

import struct

import pytest

from ovfast import _native
from ovfast.api.held_memory import HeldMemory, hold_strings
from ovfast.errors import InvalidArgumentError, ResourceExhaustedError


def packed(*elements: bytes) -> bytearray:
    out = bytearray()
    for e in elements:
        out += struct.pack("<I", len(e)) + e
    return out


def test_the_body_then_more_within_the_bound_and_all_of_it_given_back():
    memory = _native.RequestMemory(1000)
    held = HeldMemory(memory)
    assert held.hold_body(100) is None
    assert held.hold_body(60) is None  # already held: nothing more
    held.add(500, " for strings")
    assert memory.in_use == 600
    held.add(200, " for strings")  # beyond the body: 300 in all, less than held
    assert memory.in_use == 600
    held.release()
    held.release()
    assert memory.in_use == 0 and memory.refused == 0


def test_a_refusal_names_the_sizes_and_holds_nothing_more():
    memory = _native.RequestMemory(1000)
    other = HeldMemory(memory)
    assert other.hold_body(700) is None
    held = HeldMemory(memory)
    assert held.hold_body(200) is None
    with pytest.raises(ResourceExhaustedError) as e:
        held.add(300, " to hold its BYTES elements as strings (300 bytes)")
    assert str(e.value) == ("Server is overloaded: requests in flight hold 900 bytes; this one needs 300 more to hold "
                            "its BYTES elements as strings (300 bytes) (max_request_memory 1000); retry later")
    assert memory.in_use == 900 and memory.refused == 1
    assert "max_request_memory 1000" in HeldMemory(memory).hold_body(101)
    held.release()
    other.release()
    assert memory.in_use == 0


def test_strings_are_held_only_for_string_inputs_at_their_string_tensor_cost():
    memory = _native.RequestMemory(0)  # no bound: still counted
    held = HeldMemory(memory)
    s = packed(b"", b"a" * 15, b"b" * 16)
    inputs = [("s", "BYTES", [3], s), ("img", "BYTES", [3], s), ("x", "FP32", [1], bytearray(4))]
    hold_strings(held, inputs, {"s"})
    assert memory.in_use == 3 * 32 + 17  # a std::string each; the 16-byte element on the heap with its NUL
    hold_strings(None, inputs, {"s"})  # not bounded: nothing to hold
    held.release()


def test_malformed_elements_are_a_client_error():
    with pytest.raises(InvalidArgumentError, match="Invalid BYTES content of input s - element of 5 bytes at offset 0"):
        _native.string_tensor_bytes(b"\x05\x00\x00\x00ab", "s")
    assert _native.string_tensor_bytes(b"") == 0
