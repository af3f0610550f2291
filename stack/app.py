"""The Flask application: the configured services behind one address."""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from firecrest_testbuild.common.certificates import load_ca_key
from firecrest_testbuild.stack import API_VERSION, errors
from firecrest_testbuild.stack.api import Endpoint, openapi
from firecrest_testbuild.stack.auth import TokenVerifier
from firecrest_testbuild.stack.commands import Shell
from firecrest_testbuild.stack.config import StackConfig
from firecrest_testbuild.stack.context import EXTENSION, StackContext, stack_context
from firecrest_testbuild.stack.gateway import add_gateway
from firecrest_testbuild.stack.logs import configure_logging
from firecrest_testbuild.stack.probecache import ProbeCache
from firecrest_testbuild.stack.services import enabled_services, start_services
from firecrest_testbuild.stack.taskstore import TaskRunner, TaskStore

log = logging.getLogger("stack.http")

# Multipart overhead on top of the largest file a blocking upload accepts;
# bigger bodies are refused before they are read.
BODY_SLACK = 1024 * 1024


def create_app(config: StackConfig, redis_client: redis.Redis | None = None) -> Flask:
    configure_logging()
    app = Flask("stack")
    max_file = config.limits.utilities_max_file_size_mb * 1024 * 1024
    # Room for a file over the limit, so it gets a clear X-Size-Limit answer.
    app.config["MAX_CONTENT_LENGTH"] = 2 * max_file + BODY_SLACK
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the default provider has it
    context = _new_context(config, redis_client)
    app.extensions[EXTENSION] = context
    services = enabled_services(config)
    start_services(services, context)
    endpoints: list[Endpoint] = []
    for service in services:
        if service.blueprint is not None:
            app.register_blueprint(service.blueprint)
            endpoints.extend(service.endpoints)
    if config.peers:
        add_gateway(app, config, API_VERSION, endpoints)
    else:
        _add_openapi(app, endpoints)
    _add_health(app, context)
    _add_error_handlers(app)
    _add_access_log(app)
    return app


def _new_context(config: StackConfig, redis_client: redis.Redis | None) -> StackContext:
    store = TaskStore(
        redis_client or redis.Redis.from_url(config.tasks.redis_url, socket_timeout=5),
        config.tasks.expiry_seconds,
        config.public_url,
    )
    return StackContext(
        config=config,
        verifier=TokenVerifier(config.auth),
        shell=Shell(
            ca=load_ca_key(config.ssh.ca_private_key),
            certificate_lifetime=datetime.timedelta(seconds=config.ssh.certificate_lifetime),
            connect_timeout=config.ssh.connect_timeout,
        ),
        store=store,
        # Keyed by what the process serves: a restarted process fails what
        # its predecessor with the same services left running.
        runner=TaskRunner(store, config.tasks.workers, service=",".join(config.services)),
        system_probes=ProbeCache(config.status.probe_cache_seconds),
    )


def _add_openapi(app: Flask, endpoints: list[Endpoint]) -> None:
    @app.get("/openapi.json")
    def openapi_document() -> Response:
        return jsonify(openapi(endpoints, API_VERSION))


def _add_health(app: Flask, context: StackContext) -> None:
    @app.get("/_health")
    def health() -> Response:
        return jsonify({"status": "up", "tasks": context.store.healthy()})


def _add_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> tuple[Response, int, dict[str, str]]:
        limit = stack_context().config.limits.utilities_max_file_size_mb
        message = f"The request body is larger than this API accepts (files up to {limit} MB)"
        return (
            jsonify({"description": "Request too large", "error": message}),
            413,
            {errors.SIZE_LIMIT: message},
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return jsonify({"description": error.name, "error": error.description}), error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify({"description": "Internal error", "error": type(error).__name__}), 500


def _add_access_log(app: Flask) -> None:
    @app.before_request
    def start_clock() -> None:
        g.started = time.monotonic()
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]

    @app.after_request
    def access_log(response: Response) -> Response:
        fields: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
            "user": g.get("user"),
            "request_id": g.get("request_id"),
        }
        if g.get("task_id"):  # set where a task is created (jobs.task_created)
            fields["task_id"] = g.task_id
        log.info("request", extra=fields)
        return response
