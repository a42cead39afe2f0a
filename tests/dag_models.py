"""A detect -> crop -> classify pipeline built with the OpenVINO API (nothing downloaded), for the DAG tests.

``detector``: image f32 [1,3,64,64] (values 0..255) -> ``boxes`` f32 [1,16,5]: the 4x4 grid of 16x16 cells, each
as (x_min, y_min, x_max, y_max) in fractions of the image, with confidence = the brightest channel's mean over
the cell / 255. A cell filled with one saturated colour scores 1, a black cell 0.

``classifier``: crop f32 [1,3,32,32] -> ``scores`` f32 [1,3], the mean of each channel: argmax is the colour
(0 red, 1 green, 2 blue).

``detect_classify_pipeline``: request.image -> detector -> crop_boxes (demultiply_count -1, 32x32 crops) ->
classifier -> topk (argmax) -> response ``classes`` [M,1,1] and ``coordinates`` [M,1,4] (gathered), M = the
cells with confidence >= 0.5, in grid order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
from openvino import opset13 as ops

from ocr_assets import pipeline_node as node, save_model

SIZE, CELLS, CROP = 64, 4, 32
CELL = SIZE // CELLS
COLOURS = ("red", "green", "blue")


def detector() -> ov.Model:
    image = ops.parameter([1, 3, SIZE, SIZE], ov.Type.f32, name="image")
    pooled = ops.avg_pool(image, [CELL, CELL], [0, 0], [0, 0], [CELL, CELL], exclude_pad=True)   # [1,3,4,4]
    brightest = ops.reduce_max(pooled, ops.constant(np.array([1], np.int64)), keep_dims=False)  # [1,4,4]
    confidence = ops.reshape(ops.multiply(brightest, ops.constant(np.float32(1 / 255))),
                             ops.constant(np.array([1, CELLS * CELLS, 1], np.int64)), False)
    grid = np.array([[c / CELLS, r / CELLS, (c + 1) / CELLS, (r + 1) / CELLS]
                     for r in range(CELLS) for c in range(CELLS)], np.float32)[None]
    boxes = ops.concat([ops.constant(grid), confidence], axis=2)
    result = ops.result(boxes)
    result.output(0).get_tensor().set_names({"boxes"})
    return ov.Model([result], [image], "grid_detector")


def classifier() -> ov.Model:
    crop = ops.parameter([1, 3, CROP, CROP], ov.Type.f32, name="crop")
    scores = ops.reduce_mean(crop, ops.constant(np.array([2, 3], np.int64)), keep_dims=False)  # [1,3]
    result = ops.result(scores)
    result.output(0).get_tensor().set_names({"scores"})
    return ov.Model([result], [crop], "colour_classifier")


def build_detect_classify_models(repo: Path) -> dict[str, Path]:
    return {"grid_detector": save_model(detector(), repo, "grid_detector"),
            "colour_classifier": save_model(classifier(), repo, "colour_classifier")}


def image_with_squares(squares: dict[tuple[int, int], int]) -> np.ndarray:
    """Black f32 [1,3,64,64] with cell (row, column) filled by colour index (0 red, 1 green, 2 blue)."""
    image = np.zeros((1, 3, SIZE, SIZE), np.float32)
    for (r, c), colour in squares.items():
        image[0, colour, r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = 255
    return image


def expected(squares: dict[tuple[int, int], int]) -> tuple[list[int], np.ndarray]:
    """(classes, coordinates [M,4]) the pipeline returns for ``image_with_squares(squares)``: grid order."""
    cells = sorted(squares)
    coordinates = np.array([[c / CELLS, r / CELLS, (c + 1) / CELLS, (r + 1) / CELLS] for r, c in cells], np.float32)
    return [squares[cell] for cell in cells], coordinates


def detect_classify_pipeline(name: str = "detect_classify", crop_params: dict | None = None) -> dict:
    return {
        "name": name,
        "inputs": ["image"],
        "nodes": [
            node("detect", {"image": ("request", "image")}, {"boxes": "boxes"},
                 type="DL model", model_name="grid_detector"),
            node("crop", {"image": ("request", "image"), "boxes": ("detect", "boxes")},
                 {"crops": "crops", "coordinates": "coordinates"},
                 type="custom", library_name="crop_boxes", demultiply_count=-1,
                 params={"target_image_width": str(CROP), "target_image_height": str(CROP),
                         "image_height": str(SIZE), "image_width": str(SIZE), **(crop_params or {})}),
            node("classify", {"crop": ("crop", "crops")}, {"scores": "scores"},
                 type="DL model", model_name="colour_classifier"),
            node("argmax", {"scores": ("classify", "scores")}, {"indices": "classes"},
                 type="custom", library_name="topk", params={"k": "1"}),
        ],
        "outputs": [{"classes": {"node_name": "argmax", "data_item": "classes"}},
                    {"coordinates": {"node_name": "crop", "data_item": "coordinates"}}],
    }
