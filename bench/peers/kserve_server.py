"""KServe's Python ModelServer serving an OpenVINO IR through a ``kserve.Model`` subclass.

usage: python kserve_server.py NAME MODEL_XML HINT HTTP_PORT GRPC_PORT
"""
import sys

import grpc
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

from ovpool import OVPool


class OVKServeModel(Model):
    def __init__(self, name: str, xml: str, hint: str) -> None:
        super().__init__(name)
        self.xml, self.hint = xml, hint

    def load(self) -> bool:
        self.pool = OVPool(self.xml, self.hint)
        self.ready = True
        return True

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        inputs = {i.name: i.as_numpy() for i in payload.inputs}
        outs = await self.pool.infer(inputs)
        result = []
        for name, arr in outs.items():
            o = InferOutput(name=name, shape=list(arr.shape), datatype="FP32")
            o.set_data_from_numpy(arr)
            result.append(o)
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=result)


def _loopback_only() -> None:
    """KServe 0.21 binds 0.0.0.0 / [::] with no option to change it; the bench listens on loopback only."""
    make_server = grpc.aio.server

    def loopback_server(*args, **kwargs):
        server = make_server(*args, **kwargs)
        add_port = server.add_insecure_port
        server.add_insecure_port = lambda addr: add_port("127.0.0.1:" + addr.rsplit(":", 1)[1])
        return server

    grpc.aio.server = loopback_server
    config_init = uvicorn.Config.__init__

    def loopback_config(self, app, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        config_init(self, app, *args, **kwargs)

    uvicorn.Config.__init__ = loopback_config


if __name__ == "__main__":
    _loopback_only()
    name, xml, hint, http_port, grpc_port = sys.argv[1:6]
    m = OVKServeModel(name, xml, hint)
    m.load()
    ModelServer(http_port=int(http_port), grpc_port=int(grpc_port), workers=1).start([m])
