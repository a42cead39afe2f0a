"""ovfast: a fast, pip-installable, OVMS-compatible model server for OpenVINO models.

The compiled core lives in ``ovfast._native``; importing ovfast checks that it
was built and that it was built against the OpenVINO runtime it loads.
"""
from __future__ import annotations

__version__ = "0.1.0"
NATIVE_ABI_VERSION = 1


def _preload_openvino() -> None:
    """The extension's RPATH points at site-packages/openvino/libs next to it. When openvino lives in
    another site-packages (e.g. a venv with --system-site-packages), load its runtime by path first:
    the dynamic loader then resolves the extension's dependency by soname."""
    import ctypes
    import importlib.util
    import os

    spec = importlib.util.find_spec("openvino")
    for root in (spec.submodule_search_locations or []) if spec else []:
        libs = os.path.join(root, "libs")
        if os.path.isdir(libs):
            for name in sorted(os.listdir(libs)):
                if name.startswith("libopenvino.so."):
                    ctypes.CDLL(os.path.join(libs, name), mode=ctypes.RTLD_GLOBAL)
                    return


try:
    try:
        from ovfast import _native
    except ImportError:
        _preload_openvino()
        from ovfast import _native
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "ovfast's native extension (ovfast._native) is not built or cannot be loaded: "
        f"{exc}. Install ovfast with `pip install .` (it builds the extension against the "
        "pinned `openvino` wheel); a source checkout on sys.path has no compiled module."
    ) from exc


def _check_native() -> None:
    if getattr(_native, "ABI_VERSION", None) != NATIVE_ABI_VERSION:
        raise ImportError(
            f"ovfast._native has ABI version {getattr(_native, 'ABI_VERSION', None)}, "
            f"expected {NATIVE_ABI_VERSION}: the extension and the Python package are from different builds; "
            "reinstall ovfast."
        )
    built = _native.OPENVINO_BUILD_VERSION
    loaded = _native.openvino_runtime_version()
    if built != loaded:
        raise ImportError(
            f"ovfast._native was built against OpenVINO {built} but loaded OpenVINO {loaded}. "
            "ovfast pins one exact openvino version; reinstall ovfast (`pip install --force-reinstall ovfast`) "
            "or install the matching openvino wheel."
        )


_check_native()

from ovfast.errors import OvfastError  # noqa: E402

__all__ = ["OvfastError", "__version__"]
