"""The datatype names every Python front-end uses, read once from the native table.

``_native.datatypes()`` is the one source (native/include/ovfast/dtype.hpp); these dicts are
lookups over it, keyed by the KServe datatype name ("FP32", "BYTES", ...).
"""
from __future__ import annotations

import numpy as np

from ovfast import _native

_TABLE = tuple(_native.datatypes())

TF_ENUM: dict[str, int] = {k: e for k, _, e, _, _, _ in _TABLE}  # "FP32" -> 1 (tensorflow.DataType)
TRITON_NAME: dict[str, str] = {k: t for k, _, _, t, _, _ in _TABLE}  # "FP32" -> "TYPE_FP32"
# numpy dtype of a tensor's values, for the types JSON can carry as numbers (not BYTES, and not
# BF16, whose buffers hold raw uint16 bits).
NUMPY_DTYPE: dict[str, np.dtype] = {k: d for k, _, _, _, _, d in _TABLE if k not in ("BYTES", "BF16")}
TF_DT_INVALID = 0
# JSON numbers decode to numpy kinds b/i/u/f: the kinds each target kind accepts (ints feed floats, not back).
JSON_KINDS_ACCEPTED: dict[str, str] = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
