"""PP-OCRv4 (the ``rapidocr-onnxruntime`` wheel, Apache-2.0) as an OVMS-style DAG pipeline, and what the OCR
tests and ``bench/ocr.py`` compare the server with.

The wheel ships the ONNX text detector (DB: image -> per-pixel text probability) and recogniser (CRNN/SVTR:
a 48-pixel-high line -> per-column character probabilities, CTC), and the recogniser carries its character
dictionary in the ONNX metadata (``character``), which OpenVINO keeps in the model's rt_info. Nothing of the
wheel is imported (its package needs onnxruntime and OpenCV); OpenVINO reads the ONNX files directly.

The pipeline (``ocr_pipeline``)::

    request.image u8 [1,H,W,3] --> det (u8 NHWC in, normalised by the IR's preprocessing) --> probability_map
    request.image + probability_map --> text_boxes (ovfast custom node, demultiply_count -1) --> N x text_image
    text_image [1,3,48,320] --> rec --> probabilities [1,40,6625] --> argmax (topk node) --> ids [1,40,1]
    response: text_ids [N,1,40,1] (gathered), text_coordinates [N,1,4]

``ctc_decode`` turns ids back into strings with the wheel's dictionary. ``InProcessOcr`` runs the same graph
with OpenVINO and the same node library called through ctypes (no server): the reference for the text and
the in-process series of the bench.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Sequence

import numpy as np
import openvino as ov
from PIL import Image, ImageDraw, ImageFont

from custom_node_ctypes import CustomNode

IMAGE_HEIGHT, IMAGE_WIDTH = 192, 640  # the detector's static input (multiples of 32)
TEXT_HEIGHT, TEXT_WIDTH = 48, 320     # the recogniser's static input
LINES = ("OVFAST 2026", "pipelines of models", "Hello, world!")
DET_INPUT, DET_OUTPUT = "image", "probability_map"
REC_INPUT, REC_OUTPUT = "text_image", "probabilities"
TEXT_BOX_PARAMS = {"image_layout": "NHWC", "image_precision": "U8",  # the detector's input, so one metadata
                   "image_height": str(IMAGE_HEIGHT), "image_width": str(IMAGE_WIDTH),
                   "text_height": str(TEXT_HEIGHT), "text_width": str(TEXT_WIDTH)}
ARGMAX_PARAMS = {"k": "1", "input_rank": "3"}


def rapidocr_models() -> Path:
    """The wheel's models folder (found without importing the package)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rapidocr-onnxruntime is not installed (pip install --no-deps rapidocr-onnxruntime==1.4.4)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (path / "ch_PP-OCRv4_det_infer.onnx").is_file():
        raise FileNotFoundError(path)
    return path


def _rename(model: ov.Model, input_name: str, output_name: str) -> ov.Model:
    model.input(0).get_tensor().set_names({input_name})
    model.output(0).get_tensor().set_names({output_name})
    return model


def det_model(height: int = IMAGE_HEIGHT, width: int = IMAGE_WIDTH) -> ov.Model:
    """The detector taking u8 NHWC pixels [1,H,W,3]: (x / 255 - 0.5) / 0.5 and the layout change are in the IR."""
    model = ov.Core().read_model(rapidocr_models() / "ch_PP-OCRv4_det_infer.onnx")
    model.reshape([1, 3, height, width])
    ppp = ov.preprocess.PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).mean(127.5).scale(127.5)
    return _rename(ppp.build(), DET_INPUT, DET_OUTPUT)


def rec_model(width: int = TEXT_WIDTH) -> ov.Model:
    """The recogniser on one line, [1,3,48,width] scaled to -1..1 -> [1,width/8,6625] probabilities."""
    model = ov.Core().read_model(rapidocr_models() / "ch_PP-OCRv4_rec_infer.onnx")
    model.reshape([1, 3, TEXT_HEIGHT, width])
    return _rename(model, REC_INPUT, REC_OUTPUT)


@functools.lru_cache(maxsize=1)
def characters() -> tuple[str, ...]:
    """Class id -> character: CTC blank first, then the wheel's dictionary, then a space (PaddleOCR's order)."""
    model = ov.Core().read_model(rapidocr_models() / "ch_PP-OCRv4_rec_infer.onnx")
    text = str(model.get_rt_info(["framework", "character"]).value)
    return ("", *text.split("\n"), " ")


def ctc_decode(ids: np.ndarray) -> str:
    """Greedy CTC: class ids per column ([T], [T,1] or [1,T,1]) -> text (repeats merged, blanks dropped)."""
    chars = characters()
    out, previous = [], 0
    for i in np.asarray(ids).reshape(-1).tolist():
        if i != previous and i != 0:
            out.append(chars[i])
        previous = i
    return "".join(out)


def save_model(model: ov.Model, repo: Path, name: str, version: int = 1) -> Path:
    folder = repo / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, folder / "model.xml", compress_to_fp16=False)
    return repo / name


def build_ocr_models(repo: Path, det_name: str = "ocr_det", rec_name: str = "ocr_rec") -> dict[str, Path]:
    """IRs of the detector and the recogniser in ``repo/<name>/1/``; returns {name: base_path}."""
    return {det_name: save_model(det_model(), repo, det_name), rec_name: save_model(rec_model(), repo, rec_name)}


def render_text(lines: Sequence[str] = LINES, height: int = IMAGE_HEIGHT, width: int = IMAGE_WIDTH,
                size: int = 36) -> np.ndarray:
    """Black lines on white with Pillow's bundled font: u8 [1,H,W,3]."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    step = (height - 12) // max(len(lines), 1)
    for i, line in enumerate(lines):
        draw.text((20, 12 + i * step), line, fill="black", font=font)
    return np.asarray(image, dtype=np.uint8)[None].copy()


def pipeline_node(name: str, inputs: dict[str, tuple[str, str]], outputs: dict[str, str], **extra) -> dict:
    """One `nodes` entry: inputs {input: (source node, data item)}, outputs {data item: alias}."""
    return {"name": name,
            "inputs": [{k: {"node_name": n, "data_item": d}} for k, (n, d) in inputs.items()],
            "outputs": [{"data_item": d, "alias": a} for d, a in outputs.items()], **extra}


def ocr_pipeline(name: str = "ocr", det_name: str = "ocr_det", rec_name: str = "ocr_rec",
                 text_boxes: str = "text_boxes", argmax: str = "topk", box_params: dict | None = None) -> dict:
    """The ``pipeline_config_list`` entry: image -> det -> text_boxes (demultiplexed) -> rec -> argmax."""
    return {
        "name": name,
        "inputs": ["image"],
        "nodes": [
            pipeline_node("det", {DET_INPUT: ("request", "image")}, {DET_OUTPUT: DET_OUTPUT},
                  type="DL model", model_name=det_name),
            pipeline_node("boxes", {"image": ("request", "image"), "probability_map": ("det", DET_OUTPUT)},
                  {"text_images": "text_images", "text_coordinates": "text_coordinates"},
                  type="custom", library_name=text_boxes, demultiply_count=-1,
                  params={**TEXT_BOX_PARAMS, **(box_params or {})}),
            pipeline_node("rec", {REC_INPUT: ("boxes", "text_images")}, {REC_OUTPUT: REC_OUTPUT},
                  type="DL model", model_name=rec_name),
            pipeline_node("argmax", {"scores": ("rec", REC_OUTPUT)}, {"indices": "text_ids"},
                  type="custom", library_name=argmax, params=dict(ARGMAX_PARAMS)),
        ],
        "outputs": [{"text_ids": {"node_name": "argmax", "data_item": "text_ids"}},
                    {"text_coordinates": {"node_name": "boxes", "data_item": "text_coordinates"}}],
    }


def library_config(*names: str) -> list[dict]:
    """``custom_node_library_config_list`` entries for ovfast's bundled libraries."""
    from ovfast.custom_nodes import library_path

    return [{"name": n, "base_path": library_path(n)} for n in names]


def ocr_config(models: dict[str, Path], pipelines: Sequence[dict] | None = None) -> dict:
    """A whole config.json: the two models, the OCR pipeline(s), the libraries they use."""
    return {
        "model_config_list": [{"config": {"name": n, "base_path": str(p)}} for n, p in models.items()],
        "custom_node_library_config_list": library_config("text_boxes", "topk"),
        "pipeline_config_list": list(pipelines) if pipelines is not None else [ocr_pipeline()],
    }


def texts_of(text_ids: np.ndarray) -> list[str]:
    """The pipeline's gathered ``text_ids`` [N,1,T,1] -> N strings."""
    return [ctc_decode(row) for row in np.asarray(text_ids)]


class InProcessOcr:
    """The pipeline's graph without a server: OpenVINO for the models, the text_boxes library via ctypes."""

    def __init__(self, device: str = "CPU", config: dict | None = None):
        from ovfast.custom_nodes import library_path

        core = ov.Core()
        self.det = core.compile_model(det_model(), device, config or {})
        self.rec = core.compile_model(rec_model(), device, config or {})
        self.boxes = CustomNode(library_path("text_boxes"), TEXT_BOX_PARAMS)

    def text_images(self, image: np.ndarray) -> dict[str, np.ndarray]:
        probability_map = self.det.create_infer_request().infer({0: image})[0]
        return self.boxes(image=image, probability_map=probability_map)

    def session(self):
        """The graph on infer requests of its own (one session per thread): image -> (texts, coordinates [N,4])."""
        det, rec = self.det.create_infer_request(), self.rec.create_infer_request()

        def run(image: np.ndarray) -> tuple[list[str], np.ndarray]:
            found = self.boxes(image=image, probability_map=det.infer({0: image})[0])
            texts = [ctc_decode(rec.infer({0: line})[0].argmax(-1)) for line in found["text_images"]]
            return texts, found["text_coordinates"].reshape(-1, 4)

        return run

    def __call__(self, image: np.ndarray) -> tuple[list[str], np.ndarray]:
        """-> (texts, coordinates [N,4]) for one u8 [1,H,W,3] image."""
        return self.session()(image)
