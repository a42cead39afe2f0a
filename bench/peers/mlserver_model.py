"""MLServer runtime serving an OpenVINO IR (``parameters.uri`` = model.xml, ``extra.hint``).

With adaptive batching on (``max_batch_size`` > 1 in the model settings) every predict() call counts
its rows and itself in two Prometheus counters, ``bench_batch_rows_total`` and ``bench_batches_total``,
on MLServer's /metrics endpoint; the bench reads the mean batch size from them. (They go to
prometheus_client's default registry: with ``parallel_workers: 0`` that is the one /metrics serves, and
``mlserver.log`` metrics, kept in MLServer's own registry, do not show there.)
"""
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from prometheus_client import Counter

from ovpool import OVPool

_ROWS = _BATCHES = None


class OVModel(MLModel):
    async def load(self) -> bool:
        global _ROWS, _BATCHES
        params = self.settings.parameters
        self._pool = OVPool(params.uri, (params.extra or {}).get("hint", "THROUGHPUT"))
        self._count = (self.settings.max_batch_size or 0) > 1
        if self._count and _ROWS is None:
            _ROWS = Counter("bench_batch_rows", "rows run by predict()", ["model"])
            _BATCHES = Counter("bench_batches", "predict() calls", ["model"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        if self._count:
            _ROWS.labels(self.name).inc(next(iter(inputs.values())).shape[0])
            _BATCHES.labels(self.name).inc()
        outs = await self._pool.infer(inputs)
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(k, v) for k, v in outs.items()])
