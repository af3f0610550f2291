"""The gateway: one address for services that run in other processes.

Requests for a path of a peer service (/compute/..., /tasks/...) are
forwarded to it unchanged, token included (each service checks the token
itself), and its answer is streamed back. A peer that does not answer is a
503 naming it. /openapi.json merges the peers' documents.
"""

from __future__ import annotations

import logging

import requests
from flask import Flask, Response, jsonify, request

from firecrest_testbuild.stack.api import Endpoint, openapi
from firecrest_testbuild.stack.config import StackConfig

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
PEER_TIMEOUT = (5, 300)  # connect, read: compute and utilities answer within their limits

log = logging.getLogger("stack.gateway")


def add_gateway(app: Flask, config: StackConfig, version: str, endpoints: list[Endpoint]) -> None:
    """Forward the peers' paths; /openapi.json: `endpoints` (served here) and the peers'."""
    session = requests.Session()
    for service, base in config.peers.items():
        _add_forward(app, session, service, base)

    @app.get("/openapi.json")
    def merged_openapi() -> Response:
        document = openapi(endpoints, version)
        for base in config.peers.values():
            try:
                document["paths"].update(
                    session.get(f"{base}/openapi.json", timeout=5).json()["paths"]
                )
            except (requests.RequestException, ValueError, KeyError):
                log.warning("no API description from %s", base)
        return jsonify(document)


def _add_forward(app: Flask, session: requests.Session, service: str, base: str) -> None:
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]

    def forward(rest: str = "") -> Response | tuple[Response, int]:
        target = f"{base}/{service}" + (f"/{rest}" if rest else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            answer = session.request(
                request.method,
                target,
                params=request.query_string,
                data=request.get_data(),
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=PEER_TIMEOUT,
            )
        except requests.RequestException as error:
            log.warning("service %s does not answer: %s", service, error)
            body = {"description": f"Service {service} is not available", "error": str(error)}
            return jsonify(body), 503
        passed = [(k, v) for k, v in answer.raw.headers.items() if k.lower() not in HOP_BY_HOP]
        return Response(answer.iter_content(65536), status=answer.status_code, headers=passed)

    forward.__name__ = f"forward_{service}"
    app.add_url_rule(f"/{service}", view_func=forward, methods=methods, strict_slashes=False)
    app.add_url_rule(f"/{service}/<path:rest>", view_func=forward, methods=methods)
