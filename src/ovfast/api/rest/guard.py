"""REST authentication: with an API key configured, every request but the health probes must carry
``Authorization: Bearer <key>``; others are answered 401 before their body is read."""
from __future__ import annotations

from aiohttp import web

from ovfast.api.access import HEALTH_PATHS, MISSING_KEY, bearer_matches
from ovfast.api.rest.app import json_response


def auth_middleware(key: bytes):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path in HEALTH_PATHS or bearer_matches(request.headers.get("Authorization"), key):
            return await handler(request)
        resp = json_response({"error": MISSING_KEY}, 401)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="ovfast"'
        if request.body_exists:
            resp.force_close()  # its body is never read
        return resp

    return middleware
