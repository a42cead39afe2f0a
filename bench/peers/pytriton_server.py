"""PyTriton (Triton's C++ core, a Python callable per instance) serving an OpenVINO IR.

usage: python pytriton_server.py NAME MODEL_XML HINT HTTP_PORT GRPC_PORT METRICS_PORT [MAX_BATCH DELAY_US]
Two instances, Triton's dynamic batcher up to MAX_BATCH rows (default 8) with a DELAY_US window (default
500 us); the IR is reshaped to a dynamic batch and the tensors are declared without the batch dimension.
"""
import sys

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from ovpool import OVPool

INSTANCES = 2


def main() -> None:
    name, xml, hint, http_port, grpc_port, metrics_port = sys.argv[1:7]
    max_batch, delay_us = (int(sys.argv[7]), int(sys.argv[8])) if len(sys.argv) > 8 else (8, 500)
    pool = OVPool(xml, hint, dynamic_batch=True)

    @batch
    def infer(**inputs):
        return pool.infer_sync(inputs)

    ins = [Tensor(name=p.get_any_name(), dtype=np.float32, shape=tuple(d.get_length() for d in list(p.get_partial_shape())[1:]))
           for p in pool.compiled.inputs]
    outs = [Tensor(name=p.get_any_name(), dtype=np.float32, shape=tuple(d.get_length() for d in list(p.get_partial_shape())[1:]))
            for p in pool.compiled.outputs]
    cfg = dict(http_address="127.0.0.1", http_port=int(http_port), grpc_address="127.0.0.1",
               grpc_port=int(grpc_port), metrics_port=int(metrics_port))
    try:  # perf_analyzer needs the model-config endpoint, which PyTriton restricts by default
        from pytriton.triton import TritonSecurityConfig

        security = TritonSecurityConfig(restricted_endpoints=[])
    except ImportError:
        security = None
    kwargs = {"security_config": security} if security is not None else {}
    with Triton(config=TritonConfig(**cfg), **kwargs) as triton:
        triton.bind(model_name=name, infer_func=[infer] * INSTANCES, inputs=ins, outputs=outs,
                    config=ModelConfig(max_batch_size=max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=delay_us)),
                    strict=False)
        triton.serve()


if __name__ == "__main__":
    main()
