"""MLServer runtime serving an OpenVINO IR (``parameters.uri`` = model.xml, ``extra.hint``)."""
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from ovpool import OVPool


class OVModel(MLModel):
    async def load(self) -> bool:
        params = self.settings.parameters
        self._pool = OVPool(params.uri, (params.extra or {}).get("hint", "THROUGHPUT"))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        outs = await self._pool.infer(inputs)
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(k, v) for k, v in outs.items()])
