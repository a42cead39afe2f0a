"""The native JPEG/PNG decoder through ``_native.decode_image(s)``: pixel formats, resize and
precision rules, and a property test that mutates real JPEG/PNG bytes and asserts the only
outcomes are a decoded image or InvalidArgumentError (never a crash or another error)."""
from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from ovfast import _native

PIL = pytest.importorskip("PIL.Image")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)


def _encode(arr_or_img, fmt: str, mode: str | None = None, **kw) -> bytes:
    img = arr_or_img if not isinstance(arr_or_img, np.ndarray) else PIL.fromarray(arr_or_img, mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


SEEDS = {
    "jpeg": _encode(RGB, "JPEG", quality=90),
    "jpeg_progressive": _encode(RGB, "JPEG", quality=80, progressive=True),
    "jpeg_gray": _encode(RGB[:, :, 0], "JPEG"),
    "png": _encode(RGB, "PNG"),
    "png_gray": _encode(RGB[:, :, 0], "PNG"),
    "png_rgba": _encode(np.dstack([RGB, RGB[:, :, :1]]), "PNG"),
    "png_palette": _encode(PIL.fromarray(RGB).quantize(16), "PNG"),
}


def test_png_is_lossless_in_both_orders():
    png = SEEDS["png"]
    np.testing.assert_array_equal(_native.decode_image(png, "RGB"), RGB)
    np.testing.assert_array_equal(_native.decode_image(png), RGB[:, :, ::-1])  # BGR by default


@pytest.mark.parametrize("kind,channels", [("png_gray", 1), ("jpeg_gray", 1), ("png_rgba", 4), ("png_palette", 3),
                                           ("jpeg", 3), ("jpeg_progressive", 3)])
def test_channel_counts(kind, channels):
    img = _native.decode_image(SEEDS[kind])
    assert img.shape == (37, 53, channels) and img.dtype == np.uint8


def test_rgba_alpha_kept_and_colour_swapped():
    img = _native.decode_image(SEEDS["png_rgba"], "BGR")
    np.testing.assert_array_equal(img[:, :, :3], RGB[:, :, ::-1])
    np.testing.assert_array_equal(img[:, :, 3], RGB[:, :, 0])


def test_16bit_png_is_scaled_to_8_bits():
    wide = (RGB[:, :, 0].astype(np.uint16) * 257)
    img = _native.decode_image(_encode(PIL.fromarray(wide), "PNG"))
    np.testing.assert_array_equal(img[:, :, 0], RGB[:, :, 0])


def test_jpeg_matches_pillow_exactly():
    ours = _native.decode_image(SEEDS["jpeg"], "RGB")
    np.testing.assert_array_equal(ours, np.asarray(PIL.open(io.BytesIO(SEEDS["jpeg"])).convert("RGB")))


@pytest.mark.parametrize("datatype,np_dtype", [("UINT8", np.uint8), ("FP32", np.float32), ("FP16", np.float16),
                                                ("FP64", np.float64), ("INT32", np.int32), ("INT16", np.int16),
                                                ("UINT16", np.uint16)])
def test_precision_conversion_keeps_values(datatype, np_dtype):
    out = _native.decode_images([SEEDS["png"]], [1, 37, 53, 3], datatype, "RGB")
    assert out.dtype == np_dtype and out.shape == (1, 37, 53, 3)
    np.testing.assert_array_equal(out[0].astype(np.int64), RGB.astype(np.int64))


def test_int8_saturates():
    out = _native.decode_images([SEEDS["png"]], [1, 37, 53, 3], "INT8", "RGB")
    np.testing.assert_array_equal(out[0], np.minimum(RGB, 127).astype(np.int8))


def test_unsupported_precision():
    with pytest.raises(_native.InvalidArgumentError, match="precision"):
        _native.decode_images([SEEDS["png"]], [1, 37, 53, 3], "BOOL")


def test_resize_of_uniform_image_is_exact():
    flat = np.full((40, 60, 3), (10, 200, 77), np.uint8)
    out = _native.decode_images([_encode(flat, "PNG")], [1, 17, 91, 3], "UINT8", "RGB")
    assert out.shape == (1, 17, 91, 3)
    assert (out == np.array([10, 200, 77], np.uint8)).all()


def test_resize_is_bilinear_with_pixel_centres():
    # A horizontal ramp 0..255 over 256 columns halved to 128: each output is the mean of a pair.
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    out = _native.decode_images([_encode(ramp, "PNG")], [1, 4, 128, 1], "FP32")
    expected = (np.arange(0, 256, 2) + np.arange(1, 256, 2)) / 2
    np.testing.assert_allclose(out[0, 0, :, 0], expected, atol=0.51)


def test_dynamic_dims_follow_first_image_and_ranges_clamp():
    out = _native.decode_images([SEEDS["png"], SEEDS["png"]], [-1, -1, -1, -1])
    assert out.shape == (2, 37, 53, 3)
    small = _encode(RGB[:10, :12], "PNG")
    with pytest.raises(_native.InvalidArgumentError, match="same resolution"):
        _native.decode_images([SEEDS["png"], small], [-1, -1, -1, 3])


def test_channel_mismatch_and_empty():
    with pytest.raises(_native.InvalidArgumentError, match="channels"):
        _native.decode_images([SEEDS["png_gray"]], [1, 8, 8, 3])
    with pytest.raises(_native.InvalidArgumentError, match="empty"):
        _native.decode_images([SEEDS["png"], b""], [2, 8, 8, 3])


def test_decoder_releases_the_gil():
    """A Python thread keeps running while a large batch decodes natively."""
    big = _encode(RNG.integers(0, 256, size=(1200, 1600, 3), dtype=np.uint8), "PNG")
    ticks = 0
    done = threading.Event()

    def spin():
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = ticks
        _native.decode_images([big] * 4, [4, 224, 224, 3], "FP32", max_threads=1)
        during = ticks - before
    finally:
        done.set()
        t.join()
    assert during > 0


# -- property test: mutated real images --------------------------------------------------------

SEED_LIST = sorted(SEEDS.items())


@st.composite
def mutated(draw):
    name, data = draw(st.sampled_from(SEED_LIST))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            buf[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            del buf[i:i + draw(st.integers(1, 64))]
    return name, bytes(buf)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_images_decode_or_fail_cleanly(case):
    _, data = case
    try:
        img = _native.decode_image(data)
        assert img.ndim == 3 and img.shape[2] in (1, 3, 4)
    except _native.InvalidArgumentError:
        pass
    for shape in ([1, 16, 24, 3], [-1, -1, -1, -1]):
        try:
            out = _native.decode_images([data], shape, "FP32")
            assert out.shape[0] == 1
        except _native.InvalidArgumentError:
            pass


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=512))
def test_random_bytes_after_signatures(tail):
    for head in (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b""):
        try:
            _native.decode_image(head + tail)
        except _native.InvalidArgumentError:
            pass
