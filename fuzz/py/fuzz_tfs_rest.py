"""atheris target: the TF Serving REST predict body (api/rest/tfs.py): JSON text -> input tuples for a
model with one FP32 [-1, 4] input, one BYTES input, or none known.

Contract: any body either converts or raises InvalidArgumentError (a 400); any other exception is a bug.
"""
import sys

import atheris

with atheris.instrument_imports():
    import orjson

    from ovfast.api.rest.tfs import parse_predict_body
    from ovfast.errors import InvalidArgumentError
    from ovfast.runtime.model import TensorSpec

SPECS = [
    (TensorSpec("x", "FP32", (-1, 4)),),
    (TensorSpec("s", "BYTES", (-1,)), TensorSpec("n", "INT64", (-1, 2))),
    (),
]


def one(data: bytes) -> None:
    if not data:
        return
    specs, text = SPECS[data[0] % len(SPECS)], data[1:]
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return  # the transport answers 400 for unreadable JSON before this parser runs
    try:
        parse_predict_body(doc, specs)
    except InvalidArgumentError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
