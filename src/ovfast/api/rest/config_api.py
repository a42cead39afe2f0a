"""OVMS config endpoints on the REST port: GET /v1/config and POST /v1/config/reload."""
from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from ovfast.api.access import AccessConfig
from ovfast.api.rest.app import read_json_object
from ovfast.errors import hide_paths
from ovfast.repository.registry import ModelRegistry
from ovfast.repository.reloader import ConfigReloader
from ovfast.runtime.model import ModelHandle

RELOAD_FAILED = "Reloading config file failed. Check server logs for more info."


def version_status(h: ModelHandle) -> dict:
    """One TFS ModelVersionStatus in OVMS's JSON form (error_message repeats the code, as OVMS)."""
    return {"version": h.version_str, "state": h.reported_state.name,
            "status": {"error_code": h.error_code, "error_message": h.error_code}}


def config_status(registry: ModelRegistry) -> dict:
    return {name: {"model_version_status": [version_status(h) for h in handles]}
            for name, handles in registry.status().items()}


def _json(obj: object, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(obj, option=orjson.OPT_INDENT_2), status=status,
                        content_type="application/json")


def config_routes(registry: ModelRegistry, reloader: ConfigReloader, access: AccessConfig | None = None) -> list:
    """Routes for build_rest_app(extra_routes=...). The reload is refused (403) when ``access``
    disables model control."""
    access = access or AccessConfig()

    async def get_config(request: web.Request) -> web.Response:
        return _json(config_status(registry), 200)

    async def reload(request: web.Request) -> web.Response:
        access.refuse_model_control()
        await read_json_object(request, "config reload")  # OVMS sends none; garbage is refused, not ignored
        # shielded: a client that disconnects (its handler is cancelled) never interrupts a reload halfway
        result = await asyncio.shield(reloader.cycle())
        if result.error:
            return _json({"error": f"{RELOAD_FAILED} - {hide_paths(result.error)}"}, 412)
        return _json(config_status(registry), 201 if result.changed else 200)

    return [("GET", "/v1/config", get_config), ("POST", "/v1/config/reload", reload)]
