"""ovfast's example custom-node libraries (OVMS custom-node C ABI), built into the wheel.

Use a library in config.json's ``custom_node_library_config_list`` with its path::

    {"name": "text_boxes", "base_path": ovfast.custom_nodes.library_path("text_boxes")}

============  =========================================================================================
crop_boxes    crops the boxes a detector found, each resized to one size (a demultiplexer)
topk          the k largest scores of each row and their indices (``k``; argmax with k=1)
text_boxes    text lines of a DB text detector's probability map, cut out for a PP-OCR recogniser
============  =========================================================================================

Inputs, outputs and params of each are documented at the top of native/custom_nodes/<name>.cpp; the C
header for writing your own is native/include/ovfast/dag/custom_node_interface.h.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NAMES", "library_path"]

NAMES = ("crop_boxes", "topk", "text_boxes")
_DIR = Path(__file__).resolve().parent


def library_path(name: str) -> str:
    """Absolute path of the installed ``libovfast_<name>.so``."""
    if name not in NAMES:
        raise ValueError(f"unknown custom node library {name!r}; ovfast ships {', '.join(NAMES)}")
    path = _DIR / f"libovfast_{name}.so"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: ovfast was installed without its native build")
    return str(path)
