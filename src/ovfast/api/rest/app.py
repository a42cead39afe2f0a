"""REST transport: KServe v2 endpoints on aiohttp. Handlers only parse and serialize."""
from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web

from ovfast import _native
from ovfast.api.access import AccessConfig
from ovfast.api.dataplane import DataPlane, TensorsRequest
from ovfast.api.rest.limits import body_middleware, body_of, held_of
from ovfast.api.rest.tensors import HEADER, encode_infer_response, parse_infer_body, parse_json, sequence_parameters
from ovfast.api.triton_config import model_config as triton_model_config
from ovfast.errors import InvalidArgumentError, OvfastError, client_message, mapping_for
from ovfast.observability.metrics import KSERVE, REST

log = logging.getLogger("ovfast.rest")

_JSON = "application/json"


def json_response(obj, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type=_JSON)


async def read_json_object(request: web.Request, what: str) -> dict:
    """The body of a POST whose JSON is optional: {} when empty, else it must be a JSON object
    (InvalidArgumentError -> 400 naming ``what`` otherwise)."""
    body = body_of(request)
    if not len(body) or (len(body) <= 4096 and not bytes(body).strip()):  # a long blank body is not JSON
        return {}
    doc, error = parse_json(body)
    if error is not None:
        raise InvalidArgumentError(f"Invalid {what} request body: not valid JSON ({error})")
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"Invalid {what} request body: expected a JSON object, got {type(doc).__name__}")
    return doc


def error_response(exc: BaseException) -> web.Response:
    m = mapping_for(exc)
    if not isinstance(exc, OvfastError):
        log.exception("Unexpected error in REST handler", exc_info=exc)
    return json_response({"error": client_message(exc)}, m.http_status)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != _JSON:
            return json_response({"error": exc.reason}, exc.status)
        raise
    except Exception as exc:  # noqa: BLE001 - every error becomes a status + {"error": ...}
        return error_response(exc)


def cors_middleware(origins: str = "*", methods: str = "*", headers: str = "*", credentials: bool = False):
    """OVMS's CORS behaviour: every response carries the allowed origins/methods/headers, and an OPTIONS
    preflight to any path answers 200. The allowed origin sent back is one origin: "*" only without
    credentials (browsers refuse "*" with credentials, so then the request's Origin is reflected), the one
    configured origin, or the request's Origin when it is in a configured list."""
    allowed = [o.strip() for o in origins.split(",") if o.strip()] or ["*"]
    cors = {"Access-Control-Allow-Methods": methods, "Access-Control-Allow-Headers": headers}
    if credentials:
        cors["Access-Control-Allow-Credentials"] = "true"
    fixed = None  # the one value every response carries, when it does not depend on the request
    if "*" in allowed and not credentials:
        fixed = "*"
    elif "*" not in allowed and len(allowed) == 1:
        fixed = allowed[0]

    def allow_origin(request: web.Request) -> str | None:
        if fixed is not None:
            return fixed
        origin = request.headers.get("Origin")
        return origin if origin and ("*" in allowed or origin in allowed) else None

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.method == "OPTIONS":
            resp = web.Response(status=200)
        else:
            resp = await handler(request)
        resp.headers.update(cors)
        origin = allow_origin(request)
        if origin is not None:
            resp.headers["Access-Control-Allow-Origin"] = origin
        if fixed is None:
            resp.headers["Vary"] = "Origin"
        return resp

    return middleware


def build_rest_app(dp: DataPlane, extra_routes=None, cors: dict | None = None,
                   access: AccessConfig | None = None,
                   request_memory: _native.RequestMemory | None = None) -> web.Application:
    """The REST application. Middlewares, outermost first: CORS, errors, the API key (when
    ``access`` has one), then the body (read whole, within ``access.rest_limits``, and held against
    ``request_memory``, --max_request_memory, until answered)."""
    access = access or AccessConfig()
    middlewares = [cors_middleware(**(cors or {})), errors_middleware]
    if access.api_key is not None:
        from ovfast.api.rest.guard import auth_middleware

        middlewares.append(auth_middleware(access.api_key))
    middlewares.append(body_middleware(access.rest_limits, request_memory))
    # body_middleware enforces the size limit; aiohttp's own would apply to request.read(), never called
    app = web.Application(client_max_size=access.rest_limits.max_input_size, middlewares=middlewares)

    async def live(request):
        return json_response({"live": dp.live}, 200 if dp.live else 503)

    async def ready(request):
        return json_response({"ready": dp.ready}, 200 if dp.ready else 503)

    async def server_metadata(request):
        return json_response(dp.server_metadata())

    async def list_models(request):
        return json_response({"models": dp.model_names()})

    async def model_metadata(request):
        name, version = request.match_info["name"], request.match_info.get("version")
        md = await dp.model_metadata(name, version)
        dp.metrics.count(dp.resolve(name, version), KSERVE, REST, "ModelMetadata", True)
        return json_response(md)

    async def model_ready(request):
        name = request.match_info["name"]
        ok = dp.model_ready(name, request.match_info.get("version"))
        dp.metrics.count(name, KSERVE, REST, "ModelReady", True)
        return json_response({"name": name, "ready": ok}, 200 if ok else 404)

    async def model_config(request):
        # Triton's model-configuration extension (what perf_analyzer asks for before it sends load)
        return json_response(triton_model_config(
            dp.resolve(request.match_info["name"], request.match_info.get("version"))))

    async def model_statistics(request):
        # Triton's statistics extension, JSON form (perf_analyzer reads it around each window)
        out = dp.model_statistics(request.match_info.get("name", ""), request.match_info.get("version"))
        return json_response({"model_stats": out})

    async def repository_index(request):
        ready_only = (await read_json_object(request, "repository index")).get("ready", False)
        if not isinstance(ready_only, bool):
            raise InvalidArgumentError(f"Invalid repository index request body: 'ready' must be true or false, "
                                       f"got {ready_only!r}")
        return json_response(dp.repository_index(ready_only, sizes=True))

    async def repository_parameters(request) -> dict:
        params = (await read_json_object(request, "repository")).get("parameters", {})
        if not isinstance(params, dict):
            raise InvalidArgumentError(f"Invalid repository request body: 'parameters' must be an object, got {params!r}")
        return params

    async def repository_load(request):
        await dp.load_model(request.match_info["name"], await repository_parameters(request))
        return json_response({})

    async def repository_unload(request):
        await dp.unload_model(request.match_info["name"], await repository_parameters(request))
        return json_response({})

    async def infer(request: web.Request):
        received_ns = time.monotonic_ns()
        name, version = request.match_info["name"], request.match_info.get("version")
        route = dp.metrics.route_kserve_rest_infer
        body = body_of(request)
        try:
            doc, inputs, names, flags, default_binary = parse_infer_body(body, request.headers.get(HEADER))
            sequence = sequence_parameters(doc.get("parameters") or {})
        except Exception as exc:
            dp.reject(name, version, route, exc)
            raise
        req = TensorsRequest(inputs, names, received_ns, sequence, held_of(request))
        handle, outs = await dp.infer(name, version, route, req)
        params = None
        if handle.stateful and outs and outs[-1][0] == "sequence_id":
            # a stateful model's answer carries its sequence id last: a response parameter, as over gRPC
            seq_id = outs.pop()[3][0]
            params = {"sequence_id": seq_id.decode() if isinstance(seq_id, bytes) else int(seq_id)}
        payload, hlen = encode_infer_response(handle.name, handle.version_str, doc.get("id"), outs, flags,
                                              default_binary, params)
        if hlen is None:
            return web.Response(body=payload, content_type=_JSON)
        return web.Response(body=payload, content_type="application/octet-stream", headers={HEADER: str(hlen)})

    r = app.router
    r.add_get("/v2/health/live", live)
    r.add_get("/v2/health/ready", ready)
    r.add_get("/v2", server_metadata)
    r.add_get("/v2/models", list_models)
    r.add_post("/v2/repository/index", repository_index)
    r.add_post("/v2/repository/models/{name}/load", repository_load)
    r.add_post("/v2/repository/models/{name}/unload", repository_unload)
    r.add_get("/v2/models/stats", model_statistics)  # every model (before {name} captures "stats")
    r.add_get("/v2/models/{name}", model_metadata)
    r.add_get("/v2/models/{name}/versions/{version}", model_metadata)
    r.add_get("/v2/models/{name}/ready", model_ready)
    r.add_get("/v2/models/{name}/config", model_config)
    r.add_get("/v2/models/{name}/stats", model_statistics)
    r.add_get("/v2/models/{name}/versions/{version}/stats", model_statistics)
    r.add_get("/v2/models/{name}/versions/{version}/config", model_config)
    r.add_get("/v2/models/{name}/versions/{version}/ready", model_ready)
    r.add_post("/v2/models/{name}/infer", infer)
    r.add_post("/v2/models/{name}/versions/{version}/infer", infer)
    for method, path, fn in extra_routes or ():
        r.add_route(method, path, fn)
    return app
