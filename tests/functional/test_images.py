"""JPEG/PNG inputs (OVMS binary inputs) end to end: a real ImageNet classifier classifies a real
photo sent as JPEG and PNG over KServe gRPC (raw and bytes_contents) and KServe REST (binary
extension and base64 JSON), and every answer matches in-process OpenVINO inference on the same
decoded pixels. Bad images get INVALID_ARGUMENT / 400 and the server keeps serving.

TFS Predict (string_val / b64) reaches the same native hook; it is covered where the TFS API lives.
"""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from kserve_util import grpc_error, grpc_input, make_infer_request, output_array, rest, binary_body
from openvino import opset13 as ops
from tritonclient.grpc import service_pb2_grpc

import effnet
from ovfast import _native

PIL = pytest.importorskip("PIL.Image")
matplotlib = pytest.importorskip("matplotlib")

pytestmark = pytest.mark.timeout(300)

MILITARY_UNIFORM = 652  # ImageNet class of the Grace Hopper portrait


# -- fixtures -------------------------------------------------------------------------------


def _photo_path() -> Path:
    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def _encode(img, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    """The photo as shipped (JPEG 512x600), as PNG, and both at model resolution."""
    jpeg = _photo_path().read_bytes()
    img = PIL.open(io.BytesIO(jpeg)).convert("RGB")
    small = img.resize((effnet.IMAGE_SIZE, effnet.IMAGE_SIZE))
    return {
        "jpeg": jpeg,
        "png": _encode(img, "PNG"),
        "jpeg224": _encode(small, "JPEG", quality=92),
        "png224": _encode(small, "PNG"),
        "gray_jpeg": _encode(img.convert("L"), "JPEG"),
    }


def _dynamic_hw_model(base: Path) -> Path:
    """u8 [?,?,?,3] -> per-image channel means (f32 [?,3]): any size is served as sent."""
    x = ops.parameter([-1, -1, -1, 3], ov.Type.u8, name="image")
    x.output(0).get_tensor().set_names({"image"})
    y = ops.reduce_mean(ops.convert(x, ov.Type.f32), ops.constant(np.array([1, 2], np.int64)), keep_dims=False)
    y.output(0).get_tensor().set_names({"means"})
    d = base / "1"
    d.mkdir(parents=True)
    ov.save_model(ov.Model([y], [x], "dyn"), str(d / "model.xml"))
    return base


@pytest.fixture(scope="module")
def image_repo(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image_models")
    paths = effnet.write_repository(root)
    paths["dyn"] = _dynamic_hw_model(root / "dyn")
    return paths


@pytest.fixture(scope="module")
def image_server(image_repo, tmp_path_factory):
    from conftest import ServerPool

    cfg = {"model_config_list": [
        # f32 NCHW IR, NHWC clients: the transpose is built into the model at load
        {"config": {"name": "effnet", "base_path": str(image_repo["effnet_nchw"]), "layout": "NHWC:NCHW",
                    "color_format": "RGB"}},
        # u8 NHWC IR (PrePostProcessor in tests/effnet.py)
        {"config": {"name": "effnet_u8", "base_path": str(image_repo["effnet_u8"]), "color_format": "RGB"}},
        # the same, with the OVMS default channel order (BGR)
        {"config": {"name": "effnet_bgr", "base_path": str(image_repo["effnet_u8"])}},
        {"config": {"name": "dyn", "base_path": str(image_repo["dyn"])}},
    ]}
    path = tmp_path_factory.mktemp("image_cfg") / "config.json"
    path.write_text(json.dumps(cfg))
    pool = ServerPool(tmp_path_factory)
    try:
        yield pool("--config_path", str(path))
    finally:
        pool.close()


@pytest.fixture(scope="module")
def reference(image_repo):
    """In-process OpenVINO on the same model and the same decoded pixels."""
    core = ov.Core()
    compiled = core.compile_model(str(image_repo["effnet_u8"] / "1" / "model.xml"), "CPU")

    def run(images: list[bytes], color_format: str = "RGB") -> np.ndarray:
        pixels = _native.decode_images(images, [-1, effnet.IMAGE_SIZE, effnet.IMAGE_SIZE, 3], "UINT8", color_format)
        return compiled(pixels)[0]

    return run


@pytest.fixture(scope="module")
def stub(image_server):
    ch = grpc.insecure_channel(image_server.grpc_url, options=[("grpc.max_receive_message_length", 1 << 30)])
    yield service_pb2_grpc.GRPCInferenceServiceStub(ch)
    ch.close()


def _check(logits: np.ndarray, expected: np.ndarray) -> None:
    assert logits.shape == expected.shape
    assert list(logits.argmax(axis=1)) == list(expected.argmax(axis=1))
    np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-3)


# -- the photo through every transport ------------------------------------------------------


@pytest.mark.parametrize("model", ["effnet", "effnet_u8"])
@pytest.mark.parametrize("kind", ["jpeg", "png", "jpeg224", "png224"])
def test_grpc_raw_tritonclient(image_server, reference, photos, model, kind):
    client = grpcclient.InferenceServerClient(image_server.grpc_url)
    inp = grpcclient.InferInput("input", [1], "BYTES")
    inp.set_data_from_numpy(np.array([photos[kind]], dtype=object))
    logits = client.infer(model, [inp]).as_numpy("logits")
    expected = reference([photos[kind]])
    _check(logits, expected)
    assert logits[0].argmax() == MILITARY_UNIFORM


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_grpc_bytes_contents(stub, reference, photos, kind):
    req = make_infer_request("effnet", [grpc_input("input", "BYTES", [1], [photos[kind]], typed=True)])
    resp = stub.ModelInfer(req, timeout=60)
    _check(output_array(resp, "logits"), reference([photos[kind]]))


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_rest_binary_tritonclient(image_server, reference, photos, kind):
    client = httpclient.InferenceServerClient(image_server.http_url)
    inp = httpclient.InferInput("input", [1], "BYTES")
    inp.set_data_from_numpy(np.array([photos[kind]], dtype=object), binary_data=True)
    logits = client.infer("effnet", [inp]).as_numpy("logits")
    _check(logits, reference([photos[kind]]))


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_rest_base64_json(image_server, reference, photos, kind):
    body = {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "parameters": {"content_type": "base64"},
                        "data": [base64.b64encode(photos[kind]).decode()]}]}
    r = rest(image_server.http_url, "POST", "/v2/models/effnet/infer", body)
    assert r.status == 200, r.body
    out = r.json()["outputs"][0]
    logits = np.array(out["data"], np.float32).reshape(out["shape"])
    _check(logits, reference([photos[kind]]))


def test_batch_of_mixed_formats_and_sizes(image_server, reference, photos):
    """N images of different formats and resolutions: each resized to 224x224, one inference."""
    items = [photos["jpeg"], photos["png224"], photos["png"], photos["jpeg224"]]
    client = grpcclient.InferenceServerClient(image_server.grpc_url)
    inp = grpcclient.InferInput("input", [len(items)], "BYTES")
    inp.set_data_from_numpy(np.array(items, dtype=object))
    logits = client.infer("effnet", [inp]).as_numpy("logits")
    assert logits.shape == (4, 1000)
    _check(logits, reference(items))
    assert set(logits.argmax(axis=1)) == {MILITARY_UNIFORM}


def test_default_channel_order_is_bgr(image_server, reference, photos):
    client = grpcclient.InferenceServerClient(image_server.grpc_url)
    inp = grpcclient.InferInput("input", [1], "BYTES")
    inp.set_data_from_numpy(np.array([photos["jpeg"]], dtype=object))
    bgr = client.infer("effnet_bgr", [inp]).as_numpy("logits")
    _check(bgr, reference([photos["jpeg"]], "BGR"))
    assert not np.allclose(bgr, reference([photos["jpeg"]], "RGB"), atol=1e-2)


def test_raw_tensor_on_layout_model_matches_jpeg(image_server, reference, photos):
    """Clients may still send the tensor: NHWC f32 (what metadata reports) gives the same answer."""
    client = grpcclient.InferenceServerClient(image_server.grpc_url)
    meta = client.get_model_metadata("effnet", as_json=True)
    assert meta["inputs"][0]["shape"] == ["-1", "224", "224", "3"]
    assert meta["inputs"][0]["datatype"] == "FP32"
    pixels = _native.decode_images([photos["jpeg"]], [-1, 224, 224, 3], "FP32", "RGB")
    inp = grpcclient.InferInput("input", list(pixels.shape), "FP32")
    inp.set_data_from_numpy(pixels)
    _check(client.infer("effnet", [inp]).as_numpy("logits"), reference([photos["jpeg"]]))


def test_native_decode_matches_pillow(photos):
    for kind in ("jpeg", "png"):
        ours = _native.decode_image(photos[kind], "RGB")
        theirs = np.asarray(PIL.open(io.BytesIO(photos[kind])).convert("RGB"))
        np.testing.assert_array_equal(ours, theirs)


def test_dynamic_model_takes_first_image_size(stub, photos):
    req = make_infer_request("dyn", [grpc_input("image", "BYTES", [2], [photos["png"], photos["png"]], typed=True)])
    means = output_array(stub.ModelInfer(req, timeout=60), "means")
    expected = _native.decode_image(photos["png"], "BGR").reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(means, np.stack([expected, expected]), rtol=1e-4)


# -- errors -----------------------------------------------------------------------------------


def _bad_cases(photos) -> list[tuple[str, str, list, list[bytes], str]]:
    """(id, model, shape, elements, expected message fragment)"""
    jpeg, png = photos["jpeg"], photos["png"]
    corrupt_png = bytearray(png)
    corrupt_png[40:60] = b"\x00" * 20
    return [
        ("truncated_jpeg", "effnet", [1], [jpeg[: len(jpeg) // 2]], "Image parsing failed"),
        ("truncated_png", "effnet", [1], [png[:200]], "Image parsing failed"),
        ("corrupt_png", "effnet", [1], [bytes(corrupt_png)], "Image parsing failed"),
        ("not_an_image", "effnet", [1], [b"hello, world"], "neither JPEG nor PNG"),
        ("empty", "effnet", [1], [b""], "empty"),
        ("gray_for_rgb_model", "effnet", [1], [photos["gray_jpeg"]], "Invalid number of channels"),
        ("two_dim_shape", "effnet", [1, 1], [jpeg], "binary input shape dimensions: 1"),
        ("count_mismatch", "effnet", [2], [jpeg], "batch size"),
        ("mixed_sizes_dynamic", "dyn", [2], [jpeg, photos["jpeg224"]], "same resolution"),
        ("second_of_batch_bad", "effnet", [2], [jpeg, b"\xff\xd8\xff\xe0garbage"], "element 1"),
    ]


@pytest.fixture(scope="module")
def bad_cases(photos):
    return {c[0]: c for c in _bad_cases(photos)}


CASE_IDS = ["truncated_jpeg", "truncated_png", "corrupt_png", "not_an_image", "empty", "gray_for_rgb_model",
            "two_dim_shape", "count_mismatch", "mixed_sizes_dynamic", "second_of_batch_bad"]


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_images_grpc(stub, bad_cases, reference, photos, case):
    _, model, shape, items, fragment = bad_cases[case]
    name = "image" if model == "dyn" else "input"
    req = make_infer_request(model, [grpc_input(name, "BYTES", shape, items, typed=True)])
    code, details = grpc_error(stub.ModelInfer, req)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert fragment in details, details
    # still serving
    ok = make_infer_request("effnet", [grpc_input("input", "BYTES", [1], [photos["jpeg224"]], typed=True)])
    _check(output_array(stub.ModelInfer(ok, timeout=60), "logits"), reference([photos["jpeg224"]]))


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_images_rest(image_server, bad_cases, case):
    _, model, shape, items, fragment = bad_cases[case]
    name = "image" if model == "dyn" else "input"
    blob = b"".join(len(b).to_bytes(4, "little") + b for b in items)
    header = {"inputs": [{"name": name, "shape": shape, "datatype": "BYTES",
                          "parameters": {"binary_data_size": len(blob)}}]}
    body, headers = binary_body(header, [blob])
    r = rest(image_server.http_url, "POST", f"/v2/models/{model}/infer", body, headers)
    assert r.status == 400, r.body
    assert fragment in r.error()
    assert rest(image_server.http_url, "GET", "/v2/health/ready").status == 200


def test_config_rejects_unknown_color_format(tmp_path):
    from ovfast.config.load import parse_config_text

    text = json.dumps({"model_config_list": [{"config": {"name": "m", "base_path": "/x", "color_format": "YUV"}}]})
    repo = parse_config_text(text, tmp_path)
    assert not repo.models and "color_format" in repo.errors[0]
    repo = parse_config_text(text.replace("YUV", "rgb"), tmp_path)
    assert repo.models[0].color_format == "RGB" and not repo.errors


# -- the photo through the TensorFlow Serving API ------------------------------------------


@pytest.mark.parametrize("transport", ["grpc", "http"])
@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_tfs_ovmsclient(image_server, reference, photos, transport, kind):
    import ovmsclient

    url = image_server.grpc_url if transport == "grpc" else image_server.http_url
    client = ovmsclient.make_grpc_client(url) if transport == "grpc" else ovmsclient.make_http_client(url)
    logits = np.asarray(client.predict({"input": photos[kind]}, "effnet"), np.float32)
    _check(logits, reference([photos[kind]]))
    assert logits[0].argmax() == MILITARY_UNIFORM


def test_tfs_rest_row_format_batch(image_server, reference, photos):
    images = [photos["jpeg"], photos["png"]]
    body = {"instances": [{"input": {"b64": base64.b64encode(b).decode()}} for b in images]}
    r = rest(image_server.http_url, "POST", "/v1/models/effnet:predict", body)
    assert r.status == 200, r.body
    logits = np.array(r.json()["predictions"], np.float32)
    _check(logits, reference(images))
