"""ovfast's bundled custom-node libraries from Python: installed with the package, callable through the C ABI
(tests/custom_node_ctypes.py), and the in-process OCR reference (tests/ocr_assets.py) reading the text Pillow
drew. The native GoogleTests (native/tests/custom_node_*_test.cpp) cover each node's edge cases.
"""
from __future__ import annotations

import numpy as np
import pytest

import ocr_assets as A
from custom_node_ctypes import CustomNode, NodeError
from ovfast import custom_nodes


@pytest.mark.parametrize("name", custom_nodes.NAMES)
def test_installed_with_the_package(name):
    node = CustomNode(custom_nodes.library_path(name))
    node.close()


def test_unknown_library_name():
    with pytest.raises(ValueError, match="ships crop_boxes, topk, text_boxes"):
        custom_nodes.library_path("east_ocr")


def test_topk_matches_numpy():
    scores = np.random.default_rng(3).standard_normal((5, 7, 11)).astype(np.float32)
    out = CustomNode(custom_nodes.library_path("topk"), {"k": "3", "input_rank": "3"})(scores=scores)
    expected = np.argsort(-scores, axis=-1, kind="stable")[..., :3]
    np.testing.assert_array_equal(out["indices"], expected)
    np.testing.assert_array_equal(out["values"], np.take_along_axis(scores, expected, -1))


def test_crop_boxes_cuts_the_boxes():
    image = np.arange(3 * 8 * 16, dtype=np.float32).reshape(1, 3, 8, 16)
    boxes = np.array([[[0.25, 0.5, 0.75, 1.0, 0.9], [0, 0, 1, 1, 0.1]]], np.float32)
    node = CustomNode(custom_nodes.library_path("crop_boxes"), {"target_image_width": "8", "target_image_height": "4"})
    out = node(image=image, boxes=boxes)
    assert out["crops"].shape == (1, 1, 3, 4, 8)
    np.testing.assert_array_equal(out["crops"][0, 0], image[0, :, 4:8, 4:12])
    np.testing.assert_array_equal(out["confidences"], [[[np.float32(0.9)]]])


def test_node_errors_are_return_codes():
    node = CustomNode(custom_nodes.library_path("text_boxes"), A.TEXT_BOX_PARAMS)
    with pytest.raises(NodeError) as wrong_precision:
        node(image=np.zeros((1, 32, 32, 3), np.float32), probability_map=np.zeros((1, 1, 32, 32), np.float32))
    assert wrong_precision.value.code == 3
    with pytest.raises(NodeError) as wrong_shape:
        node(image=np.zeros((1, 32, 32, 3), np.uint8), probability_map=np.zeros((1, 2, 32, 32), np.float32))
    assert wrong_shape.value.code == 4
    with pytest.raises(NodeError) as bad_params:
        CustomNode(custom_nodes.library_path("text_boxes"), {"text_height": "tall"})
    assert bad_params.value.code == 1


@pytest.fixture(scope="module")
def ocr():
    return A.InProcessOcr()


def test_reference_ocr_reads_the_rendered_lines(ocr):
    texts, coordinates = ocr(A.render_text())
    assert texts == list(A.LINES)
    assert coordinates.shape == (3, 4)
    assert (np.diff(coordinates[:, 1]) > 0).all()  # top to bottom


def test_reference_ocr_other_text(ocr):
    lines = ("Model server", "DAG 18")
    texts, _ = ocr(A.render_text(lines))
    assert texts == list(lines)


def test_reference_ocr_blank_image_has_no_lines(ocr):
    found = ocr.text_images(np.full((1, A.IMAGE_HEIGHT, A.IMAGE_WIDTH, 3), 255, np.uint8))
    assert found["text_images"].shape == (0, 1, 3, A.TEXT_HEIGHT, A.TEXT_WIDTH)
