"""The v2 Flask application: the service groups behind one address, every
answer with `F7T-AppVersion`, every refusal in the description's error model."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from firecrest_testbuild.stack.auth import TokenVerifier
from firecrest_testbuild.stack.errors import ApiError
from firecrest_testbuild.stack.logs import configure_logging
from firecrest_testbuild.stack.staging import Staging
from firecrest_testbuild.stack.v2 import APP_VERSION, compute, ops, status, transfer
from firecrest_testbuild.stack.v2.api import EXTENSION, V2Context, error_body
from firecrest_testbuild.stack.v2.config import V2Config
from firecrest_testbuild.stack.v2.health import Health
from firecrest_testbuild.stack.v2.pool import (
    ConnectionPool,
    KeySource,
    sshca_keys,
    sshservice_keys,
    static_keys,
)

log = logging.getLogger("stack.v2.http")

DESCRIPTION = Path(__file__).with_name("firecrest-api-v2.5.6.yaml")
HEALTH_INTERVAL = 10.0  # seconds a system's probed health answers /status/systems
MULTIPART_SLACK = 1024 * 1024  # form overhead around the largest small upload


def create_app(config: V2Config, pool: ConnectionPool | None = None) -> Flask:
    configure_logging()
    app = Flask("stack-v2")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the default provider has it
    app.config["MAX_CONTENT_LENGTH"] = 2 * config.transfer.max_ops_file_size + MULTIPART_SLACK
    staging = Staging(config.storage) if config.storage is not None else None
    if pool is None:
        pool = new_pool(config)
        pool.start_pruning()
    app.extensions[EXTENSION] = V2Context(
        config=config,
        verifier=TokenVerifier(config.auth),
        pool=pool,
        staging=staging,
        health=Health(HEALTH_INTERVAL, staging.healthy if staging is not None else None),
    )
    for module in (status, ops, transfer, compute):
        app.register_blueprint(module.blueprint)
    _add_health(app)
    _add_error_handlers(app)
    _add_headers_and_log(app)
    return app


def new_pool(config: V2Config) -> ConnectionPool:
    ssh = config.ssh
    keys: KeySource
    if ssh.credentials == "sshca":
        assert ssh.sshca_url is not None  # the configuration requires it
        keys = sshca_keys(ssh.sshca_url, ssh.connect_timeout)
    elif ssh.credentials == "sshservice":
        assert ssh.sshca_url is not None
        keys = sshservice_keys(ssh.sshca_url, ssh.connect_timeout)
    else:
        assert ssh.static_keys_folder is not None
        keys = static_keys(ssh.static_keys_folder)
    return ConnectionPool(keys, ssh.connect_timeout, ssh.idle_timeout, ssh.max_connections)


def _add_health(app: Flask) -> None:
    @app.get("/_health")
    def health() -> Response:
        return jsonify({"status": "up"})

    # The API description this stack implements (upstream's, BSD-3-Clause:
    # LICENSE-firecrest-v2), served where FastAPI serves upstream's.
    description = yaml.safe_load(DESCRIPTION.read_text())

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(description)


def _error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error_body(error)), error.status, {}


def _add_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _error)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> tuple[Response, int, dict[str, str]]:
        limit = app.extensions[EXTENSION].config.transfer.max_ops_file_size
        return _error(ApiError(413, f"The request body is too large (files up to {limit} bytes)"))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
        return _error(ApiError(error.code or 400, error.description or error.name))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int, dict[str, str]]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error(ApiError(500, f"Internal error: {type(error).__name__}"))


def _add_headers_and_log(app: Flask) -> None:
    @app.before_request
    def start_clock() -> None:
        g.started = time.monotonic()
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["F7T-AppVersion"] = APP_VERSION
        response.headers["F7T-Timestamp"] = str(int(time.time()))
        if g.get("user"):
            response.headers["F7T-AuthUsername"] = g.user
        fields: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
            "user": g.get("user"),
            "request_id": g.get("request_id"),
        }
        log.info("request", extra=fields)
        return response
