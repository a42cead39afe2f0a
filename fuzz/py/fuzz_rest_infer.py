"""atheris target: the KServe REST infer body parser (api/rest/tensors.py), JSON and binary extension.

Contract: any body and any Inference-Header-Content-Length either parses or raises
InvalidArgumentError (a 400); anything else (TypeError, RecursionError, MemoryError ...) is a bug.
The first two bytes pick the header length form (absent, in range, out of range, not a number).
"""
import sys

import atheris

with atheris.instrument_imports():
    from ovfast.api.rest.tensors import parse_infer_body
    from ovfast.errors import InvalidArgumentError


def one(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, body = data[0] % 4, data[2:]
    header = [None, str(data[1] % (len(body) + 1)), str(len(body) + 1 + data[1]), "x" + str(data[1])][mode]
    try:
        parse_infer_body(body, header)
    except InvalidArgumentError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
