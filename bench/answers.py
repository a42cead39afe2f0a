"""Are a server's answers right? Distinct rows sent at once, each answer compared with in-process OpenVINO.

The load generators look only at the status of a response. A server that batches requests must also hand
each caller the rows computed from its own input; sending ``count`` different 1-row requests concurrently
(so a batching server puts them in shared batches) and comparing every answer with the same row run
in-process checks both the numbers and the routing of a batch's rows back to their requests.
"""
from __future__ import annotations

import asyncio

import numpy as np
import openvino as ov

# batch-N and batch-1 matmuls may sum in another order: small float differences are expected, a
# misrouted or garbled row is off by the scale of the output itself
RTOL = 1e-3


def reference(xml, input_name: str, rows: np.ndarray) -> np.ndarray:
    """The model's first output for each row of ``rows`` (shape [count, 1, ...]), one batch-1 inference each."""
    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    req = compiled.create_infer_request()
    out = []
    for row in rows:
        req.infer({input_name: row})
        out.append(np.array(req.get_output_tensor(0).data, copy=True))
    return np.stack(out)


async def _ask(url: str, model: str, input_name: str, rows: np.ndarray, datatype: str) -> list:
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        async def one(row):
            inp = grpcclient.InferInput(input_name, list(row.shape), datatype)
            inp.set_data_from_numpy(row)
            res = await client.infer(model, [inp])
            return res.as_numpy(res.get_response().outputs[0].name)

        return await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
    finally:
        await client.close()


def sample_rows(model, count: int = 16) -> np.ndarray:
    """``count`` distinct requests' inputs for ``model`` (shape [count, *model.input_shape]), fixed seed."""
    return np.random.default_rng(123).standard_normal((count, *model.input_shape)).astype(np.float32)


def check(url: str, model, rows: np.ndarray, expected: np.ndarray) -> dict:
    """Send every row of ``rows`` at once to the gRPC server at ``url``; compare with ``expected``.

    Returns {"ok", "count", "wrong", "errors", "max_rel_err", "detail"} (``detail`` says what went wrong)."""
    count = len(rows)
    try:
        got = asyncio.run(_ask(url, model.name, model.input_name, rows, model.datatype))
    except Exception as exc:
        return {"ok": False, "count": count, "wrong": None, "errors": count, "max_rel_err": None,
                "detail": f"{type(exc).__name__}: {exc}"}
    wrong, errors, worst, detail = 0, 0, 0.0, ""
    for i, (g, e) in enumerate(zip(got, expected)):
        if isinstance(g, BaseException):
            errors += 1
            detail = detail or f"request {i}: {type(g).__name__}: {g}"
            continue
        g = np.asarray(g, dtype=np.float32)
        if g.size != e.size:
            wrong += 1
            detail = detail or f"request {i}: shape {list(g.shape)}, expected {list(e.shape)}"
            continue
        scale = float(np.max(np.abs(e))) or 1.0
        err = float(np.max(np.abs(g.reshape(e.shape) - e))) / scale
        worst = max(worst, err)
        if err > RTOL:
            wrong += 1
            detail = detail or f"request {i}: max error {err:.3g} of the output's scale"
    return {"ok": wrong == 0 and errors == 0, "count": count, "wrong": wrong, "errors": errors,
            "max_rel_err": worst, "detail": detail}
