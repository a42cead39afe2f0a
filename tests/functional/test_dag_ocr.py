"""Real DAG pipelines over every API: PP-OCRv4 (``rapidocr-onnxruntime`` wheel) as image -> text detection ->
ovfast's text_boxes custom node (demultiplexed) -> text recognition -> argmax node -> gather, reading text that
Pillow drew; and a detect -> crop -> classify pipeline (tests/dag_models.py). The recognised strings are
checked exactly, against the lines drawn and against the same graph run in-process (tests/ocr_assets.py).
Custom nodes that return errors fail only their request: the server keeps serving every pipeline.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import dag_models as D
import ocr_assets as A

pytestmark = pytest.mark.timeout(600)

OTHER_LINES = ("Model server", "DAG 18")


@pytest.fixture(scope="module")
def dag_server(tmp_path_factory, ovfast_server_session):
    repo = tmp_path_factory.mktemp("dag_repo")
    models = {**A.build_ocr_models(repo), **D.build_detect_classify_models(repo)}
    config = A.ocr_config(models, [
        A.ocr_pipeline(),
        D.detect_classify_pipeline(),
        D.detect_classify_pipeline("detect_classify_two_at_most", {"max_boxes": "2"}),
    ])
    config["custom_node_library_config_list"] = A.library_config("text_boxes", "topk", "crop_boxes")
    path = repo / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return ovfast_server_session("--config_path", str(path), "--file_system_poll_wait_seconds", "0")


@pytest.fixture(scope="module")
def reference():
    return A.InProcessOcr()


@pytest.fixture(scope="module")
def grpc(dag_server):
    return grpcclient.InferenceServerClient(dag_server.grpc_url)


@pytest.fixture(scope="module")
def http(dag_server):
    return httpclient.InferenceServerClient(dag_server.http_url, concurrency=4)


def kserve_infer(client, module, model: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict:
    from tritonclient.utils import np_to_triton_dtype

    wire = []
    for name, array in inputs.items():
        i = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        i.set_data_from_numpy(array)
        wire.append(i)
    result = client.infer(model, wire, outputs=[module.InferRequestedOutput(o) for o in outputs])
    return {o: result.as_numpy(o) for o in outputs}


def ocr_over(client, module, image: np.ndarray) -> tuple[list[str], np.ndarray]:
    out = kserve_infer(client, module, "ocr", {"image": image}, ["text_ids", "text_coordinates"])
    return A.texts_of(out["text_ids"]), out["text_coordinates"].reshape(-1, 4)


def expect_reference(texts, coordinates, reference, image, lines) -> None:
    assert texts == list(lines)
    ref_texts, ref_coordinates = reference(image)
    assert texts == ref_texts
    # the detector runs in bf16 on AMX machines: a box edge may move by a pixel between compile settings
    np.testing.assert_allclose(coordinates, ref_coordinates, atol=2)


# -- OCR -------------------------------------------------------------------------------------------


def test_ocr_kserve_grpc(grpc, reference):
    image = A.render_text()
    texts, coordinates = ocr_over(grpc, grpcclient, image)
    expect_reference(texts, coordinates, reference, image, A.LINES)


def test_ocr_kserve_rest(http, reference):
    image = A.render_text(OTHER_LINES)
    texts, coordinates = ocr_over(http, httpclient, image)
    expect_reference(texts, coordinates, reference, image, OTHER_LINES)


def test_ocr_tfs_grpc_and_rest(dag_server):
    from ovmsclient import make_grpc_client, make_http_client

    image = A.render_text()
    for client in (make_grpc_client(dag_server.grpc_url), make_http_client(dag_server.http_url)):
        out = client.predict(inputs={"image": image}, model_name="ocr")
        assert A.texts_of(out["text_ids"]) == list(A.LINES)
        assert out["text_coordinates"].shape == (3, 1, 4)


def encoded(image: np.ndarray, fmt: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[0]).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def kserve_images(client, module, images: list[bytes], model: str = "ocr"):
    i = module.InferInput("image", [len(images)], "BYTES")
    i.set_data_from_numpy(np.array(images, dtype=np.object_))
    return client.infer(model, [i], outputs=[module.InferRequestedOutput("text_ids")])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_ocr_from_encoded_images_every_api(dag_server, grpc, http, fmt):
    """The encoded image goes straight in (OVMS binary input): the pipeline decodes it once, to the u8 NHWC
    (BGR) pixels its input declares, and the detector and the text_boxes custom node share them."""
    from ovmsclient import make_grpc_client, make_http_client

    data = encoded(A.render_text(OTHER_LINES), fmt)
    for client, module in ((grpc, grpcclient), (http, httpclient)):
        out = kserve_images(client, module, [data])
        assert A.texts_of(out.as_numpy("text_ids")) == list(OTHER_LINES)
    for client in (make_grpc_client(dag_server.grpc_url), make_http_client(dag_server.http_url)):
        out = client.predict(inputs={"image": data}, model_name="ocr")
        assert A.texts_of(out["text_ids"]) == list(OTHER_LINES)
        assert out["text_coordinates"].shape == (len(OTHER_LINES), 1, 4)


def test_ocr_image_of_another_size_is_resized(grpc):
    """Static height and width: an image of another size is resized to them (OVMS, NHWC inputs)."""
    big = A.render_text(OTHER_LINES, height=2 * A.IMAGE_HEIGHT, width=2 * A.IMAGE_WIDTH, size=72)
    out = kserve_images(grpc, grpcclient, [encoded(big, "PNG")])
    assert A.texts_of(out.as_numpy("text_ids")) == list(OTHER_LINES)


def test_ocr_bad_images_are_clean_errors(grpc, http):
    """OVMS's binary-input errors, from the one decode at the pipeline's entry, on both transports; the
    pipeline keeps serving."""
    png = encoded(A.render_text(), "PNG")
    gray = encoded(A.render_text()[..., 0], "PNG")  # one channel for a three-channel input
    cases = [([png[:300]], "Image parsing failed"),
             ([b"not an image at all"], "neither JPEG nor PNG"),
             ([gray], "Invalid number of channels in binary input - Expected: 3; Actual: 1"),
             ([png, png], "Invalid input batch size - Expected: 1; Actual: 2")]
    for images, message in cases:
        for client, module, status in ((grpc, grpcclient, "INVALID_ARGUMENT"), (http, httpclient, "400")):
            with pytest.raises(InferenceServerException) as e:
                kserve_images(client, module, images)
            assert message in e.value.message(), e.value.message()
            assert status in str(e.value.status())
    assert A.texts_of(kserve_images(grpc, grpcclient, [png]).as_numpy("text_ids")) == list(A.LINES)


def test_ocr_metadata(grpc):
    meta = grpc.get_model_metadata("ocr", as_json=True)
    inputs = {i["name"]: i for i in meta["inputs"]}
    assert inputs["image"]["datatype"] == "UINT8"
    assert [int(d) for d in inputs["image"]["shape"]] == [1, A.IMAGE_HEIGHT, A.IMAGE_WIDTH, 3]
    assert {o["name"] for o in meta["outputs"]} == {"text_ids", "text_coordinates"}


def test_concurrent_requests_get_their_own_text(grpc):
    texts = [("first line", "zero"), ("second one",), ("THIRD", "one more", "and 42"), A.LINES]
    images = [A.render_text(t) for t in texts]

    def one(i: int) -> list[str]:
        return ocr_over(grpc, grpcclient, images[i % len(images)])[0]

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(one, range(12)))
    assert got == [list(texts[i % len(texts)]) for i in range(12)]


def test_ocr_blank_image_has_no_results(grpc, http):
    """A demultiplexer with no results: OVMS answers gRPC ABORTED / HTTP 204."""
    blank = np.full((1, A.IMAGE_HEIGHT, A.IMAGE_WIDTH, 3), 255, np.uint8)
    with pytest.raises(InferenceServerException) as e:
        ocr_over(grpc, grpcclient, blank)
    assert "ABORTED" in str(e.value.status())
    with pytest.raises(InferenceServerException) as e:
        ocr_over(http, httpclient, blank)
    assert "204" in str(e.value.status())


def test_ocr_wrong_image_shape_is_a_clean_error(grpc):
    with pytest.raises(InferenceServerException) as e:
        ocr_over(grpc, grpcclient, np.zeros((1, 100, 100, 3), np.uint8))
    assert "INVALID_ARGUMENT" in str(e.value.status())
    assert ocr_over(grpc, grpcclient, A.render_text())[0] == list(A.LINES)


# -- detect -> crop -> classify ---------------------------------------------------------------------

SQUARES = {(0, 1): 0, (2, 3): 1, (3, 0): 2}


@pytest.mark.parametrize("module", [grpcclient, httpclient], ids=["grpc", "rest"])
def test_detect_crop_classify(module, grpc, http):
    client = grpc if module is grpcclient else http
    out = kserve_infer(client, module, "detect_classify", {"image": D.image_with_squares(SQUARES)},
                       ["classes", "coordinates"])
    classes, coordinates = D.expected(SQUARES)
    assert out["classes"].shape == (3, 1, 1)
    assert out["classes"].reshape(-1).tolist() == classes
    np.testing.assert_allclose(out["coordinates"].reshape(-1, 4), coordinates)


def test_node_error_fails_only_its_request(grpc, http):
    """crop_boxes with max_boxes 2 returns an error code for three boxes: a clean request error, after which
    the same pipeline, the others and the models keep answering."""
    image = D.image_with_squares(SQUARES)
    for client, module in ((grpc, grpcclient), (http, httpclient)):
        with pytest.raises(InferenceServerException) as e:
            kserve_infer(client, module, "detect_classify_two_at_most", {"image": image}, ["classes"])
        assert "Custom node failed during execution" in e.value.message()
    two = {(1, 1): 2, (0, 0): 1}
    out = kserve_infer(grpc, grpcclient, "detect_classify_two_at_most", {"image": D.image_with_squares(two)},
                       ["classes"])
    assert out["classes"].reshape(-1).tolist() == D.expected(two)[0]
    assert ocr_over(grpc, grpcclient, A.render_text())[0] == list(A.LINES)
    scores = kserve_infer(grpc, grpcclient, "colour_classifier",
                          {"crop": np.full((1, 3, D.CROP, D.CROP), 7, np.float32)}, ["scores"])["scores"]
    np.testing.assert_allclose(scores, [[7, 7, 7]], rtol=2e-2)
