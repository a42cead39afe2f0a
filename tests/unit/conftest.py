"""Fixtures of the unit tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """ovfast's protos generated as the package ``ovfast_testgen`` and imported (proto_kit.py)."""
    from proto_kit import generated_stubs  # noqa: PLC0415 - skips the module without tritonclient/ovmsclient

    yield from generated_stubs(tmp_path_factory)
