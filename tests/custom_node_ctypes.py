"""Calling a custom-node library in-process through its C ABI with ctypes, as the server's DAG executor
does: ``initialize`` with params, ``execute`` on numpy arrays, every returned block handed back to the
library's ``release``. The OCR reference (tests/ocr_assets.py) and bench/ocr.py use it to run the same node
code the server runs, without a server.
"""
from __future__ import annotations

import ctypes
from typing import Mapping

import numpy as np

# CustomNodeTensorPrecision (native/include/ovfast/dag/custom_node_interface.h) <-> numpy
_PRECISIONS = {1: np.float32, 2: np.float16, 3: np.uint8, 4: np.int8, 5: np.int16, 6: np.uint16, 7: np.int32,
               8: np.float64, 9: np.int64}
_CODES = {np.dtype(t): code for code, t in _PRECISIONS.items()}


class _Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.POINTER(ctypes.c_uint8)), ("dataBytes", ctypes.c_uint64),
                ("dims", ctypes.POINTER(ctypes.c_uint64)), ("dimsCount", ctypes.c_uint64), ("precision", ctypes.c_int)]


class _Param(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class NodeError(RuntimeError):
    """A non-zero return code of the library."""

    def __init__(self, function: str, code: int):
        super().__init__(f"{function} returned {code}")
        self.code = code


class CustomNode:
    """One node of one library: ``CustomNode(path, {"k": "3"})(scores=array)`` -> ``{name: array}``."""

    def __init__(self, path: str, params: Mapping[str, str] | None = None):
        self._lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        self._keep = [(k.encode(), str(v).encode()) for k, v in (params or {}).items()]
        self._params = (_Param * max(len(self._keep), 1))(*[_Param(k, v) for k, v in self._keep])
        self._manager = ctypes.c_void_p()
        lib = self._lib
        lib.initialize.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(_Param), ctypes.c_int]
        lib.execute.argtypes = [ctypes.POINTER(_Tensor), ctypes.c_int, ctypes.POINTER(ctypes.POINTER(_Tensor)),
                                ctypes.POINTER(ctypes.c_int), ctypes.POINTER(_Param), ctypes.c_int, ctypes.c_void_p]
        lib.release.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.deinitialize.argtypes = [ctypes.c_void_p]
        rc = lib.initialize(ctypes.byref(self._manager), self._params, len(self._keep))
        if rc != 0:
            raise NodeError("initialize", rc)

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        arrays = {name: np.ascontiguousarray(a) for name, a in inputs.items()}
        names = [n.encode() for n in arrays]
        dims = [(ctypes.c_uint64 * max(a.ndim, 1))(*a.shape) for a in arrays.values()]
        tensors = (_Tensor * max(len(arrays), 1))(*[
            _Tensor(name, a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), a.nbytes, d, a.ndim, _CODES[a.dtype])
            for name, a, d in zip(names, arrays.values(), dims)])
        out = ctypes.POINTER(_Tensor)()
        count = ctypes.c_int()
        rc = self._lib.execute(tensors, len(arrays), ctypes.byref(out), ctypes.byref(count), self._params,
                               len(self._keep), self._manager)
        if rc != 0:
            raise NodeError("execute", rc)
        results: dict[str, np.ndarray] = {}
        for i in range(count.value):
            t = out[i]
            shape = tuple(t.dims[j] for j in range(t.dimsCount))
            raw = ctypes.string_at(t.data, t.dataBytes)
            results[t.name.decode()] = np.frombuffer(raw, _PRECISIONS[t.precision]).reshape(shape).copy()
            self._lib.release(ctypes.cast(t.dims, ctypes.c_void_p), self._manager)
            self._lib.release(ctypes.cast(t.data, ctypes.c_void_p), self._manager)
        self._lib.release(ctypes.cast(out, ctypes.c_void_p), self._manager)
        return results

    def close(self) -> None:
        if self._manager:
            self._lib.deinitialize(self._manager)
            self._manager = ctypes.c_void_p()

    def __del__(self) -> None:
        self.close()
