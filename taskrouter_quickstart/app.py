"""The app factory: settings, logging, the proxy fix, the TaskRouter backend and the blueprints.

`flask --app app run` and `gunicorn 'app:create_app()'` both start here.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Mapping

from flask import Flask, has_request_context, jsonify, request
from flask.logging import default_handler
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

import taskrouter_sandbox
from taskrouter_quickstart import (
    callback_log,
    cli,
    config,
    request_limits,
    serving,
    taskrouter,
    token_cookie,
)
from taskrouter_quickstart.config import ConfigError
from taskrouter_quickstart.routes import (
    ApiError,
    assignment,
    console,
    desk,
    reservations,
    tasks,
)
from taskrouter_quickstart.taskrouter import TaskRouterError

# Callbacks and action parameters are small; anything bigger is not from TaskRouter.
MAX_CONTENT_LENGTH = 1024 * 1024
# gunicorn's master stops on this worker exit status ("worker failed to boot") instead of
# restarting the worker forever; for flask run it is just a non-zero status.
CONFIG_ERROR_EXIT_STATUS = 3


class ErrorStreamHandler(logging.StreamHandler):
    """Flask's default handler (its format; the request's wsgi.errors, else stderr) for the
    app's logger when nothing else handles it, without the two context proxies Flask's looks
    its stream up through for every record: a fifth of the callback's log line."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(default_handler.formatter)

    @property
    def stream(self):
        return request.environ["wsgi.errors"] if has_request_context() else sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        # StreamHandler's own __init__ sets one; the stream is looked up per record instead.
        pass


def create_app(test_config: Mapping[str, object] | None = None) -> Flask:
    """Build the app from the environment (and `.env`), with `test_config` merged over it.

    test_config may hold any setting from config.SETTINGS (validated like the environment),
    other Flask config keys (TESTING, CALLBACK_LOG_PATH, ...), and ENVIRON: the mapping to
    read settings from instead of the process environment and `.env`.

    Started without test_config (flask run, gunicorn), a bad setting prints one line
    "error: ..." to stderr and exits with status 3 instead of a traceback.
    """
    try:
        return _create_app(test_config)
    except ConfigError as exc:
        if test_config is not None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_EXIT_STATUS) from None


def _create_app(test_config: Mapping[str, object] | None) -> Flask:
    extra = dict(test_config or {})
    environ = extra.pop("ENVIRON", None)
    overrides = {name: extra.pop(name) for name in list(extra) if name in config.SETTING_NAMES}
    if environ is None:
        environ = config.read_environment()
    serving_as = serving.detect()
    if serving_as is not None and serving_as.port is not None:
        # `flask run --port` says where this server really is, whatever PORT says.
        overrides = {"HOST": serving_as.host, "PORT": str(serving_as.port), **overrides}
    settings = config.load_settings({**environ, **overrides})

    app = Flask(__name__, instance_relative_config=True, instance_path=settings["INSTANCE_PATH"])
    app.config.update(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH)
    app.config.update(settings)
    app.config.update(extra)
    app.config["BACKEND"] = config.backend(settings)

    if app.logger.level == logging.NOTSET:
        # One INFO line per callback is part of what this server offers.
        app.logger.setLevel(logging.INFO)
    if default_handler in app.logger.handlers:
        app.logger.removeHandler(default_handler)
        app.logger.addHandler(ErrorStreamHandler())

    # One proxy (ngrok) in front: trust its scheme and host, never its client address
    # (the guard in security.py reads the real peer address).
    # Outermost, so that the limits' JSON 414/431 come before anything reads the request,
    # the callback's fast path included.
    app.wsgi_app = request_limits.RequestLimits(
        ProxyFix(assignment.CallbackFastPath(app, app.wsgi_app), x_for=0, x_proto=1, x_host=1)
    )

    if app.config["BACKEND"] == "sandbox":
        mount_sandbox(app)
    taskrouter.init_app(app)
    try:
        callback_log.init_app(app)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"the callback log in {app.instance_path} cannot be opened: {exc} "
            "(the instance folder must be writable)"
        ) from exc

    register_error_handlers(app)
    token_cookie.init_app(app)
    for module in (assignment, tasks, reservations, console, desk):
        app.register_blueprint(module.bp)
    cli.init_app(app)
    if serving_as is not None and serving_as.port is None:
        serving.start_on_first_request(app)  # gunicorn: its --bind shows in a request
    elif serving_as is not None:
        serving.start(app)
    return app


def mount_sandbox(app: Flask) -> None:
    """Serve the local TaskRouter at /sandbox and point this app's own client at it.

    The app still talks to it over HTTP through the twilio library, exactly as to Twilio;
    only the settings below are filled in from the sandbox instead of the environment.
    """
    settings = app.config
    # With TASKROUTER_BACKEND=sandbox set explicitly, the account settings pin its credentials.
    settings.setdefault("SANDBOX_ACCOUNT_SID", settings["TWILIO_ACCOUNT_SID"])
    settings.setdefault("SANDBOX_AUTH_TOKEN", settings["TWILIO_AUTH_TOKEN"])
    try:
        box = taskrouter_sandbox.init_app(app, url_prefix="/sandbox")
    except (OSError, sqlite3.Error, ValueError) as exc:
        raise ConfigError(f"the local TaskRouter sandbox cannot start: {exc}") from exc

    local_url = config.local_base_url(settings)
    # SIDs taken from the seed follow a reset made while the server runs (serving.py).
    settings["SANDBOX_SEEDED_SIDS"] = not (
        settings["TWILIO_WORKSPACE_SID"] or settings["TWILIO_WORKFLOW_SID"]
    )
    settings.update(
        TWILIO_ACCOUNT_SID=box.account_sid,
        TWILIO_AUTH_TOKEN=box.auth_token,
        TASKROUTER_BASE_URL=f"{local_url}/sandbox",
        TWILIO_WORKSPACE_SID=settings["TWILIO_WORKSPACE_SID"] or box.seeded.workspace_sid,
        TWILIO_WORKFLOW_SID=settings["TWILIO_WORKFLOW_SID"] or box.seeded.workflow_sid,
    )
    # The sandbox signs its callbacks for the URL it calls, so that URL must be the one the
    # signature check rebuilds: the public one when PUBLIC_BASE_URL is set. Only the serving
    # process points the workflow at it (serving.start): building an app changes nothing.
    settings["SANDBOX_CALLBACK_URL"] = (
        f"{settings['PUBLIC_BASE_URL'] or local_url}/assignment_callback"
    )


def _error_response(status: int, body: dict[str, object], headers: Mapping[str, str] | None = None):
    response = jsonify({"error": body})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    """Every error reaches the client as JSON: no HTML error page, no stack trace."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return _error_response(exc.status, exc.as_dict(), exc.headers)

    @app.errorhandler(TaskRouterError)
    def taskrouter_error(exc: TaskRouterError):
        app.logger.warning("TaskRouter error %s (%s): %s", exc.status, exc.code, exc.message)
        return _error_response(exc.status, exc.as_dict())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        body = {
            "status": status,
            "code": (exc.name or "error").lower().replace(" ", "_"),
            "message": exc.description,
            "more_info": None,
        }
        # 405 must keep its Allow header.
        headers = {key: value for key, value in exc.get_headers() if key == "Allow"}
        return _error_response(status, body, headers)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        app.logger.exception("Unhandled error")
        body = {
            "status": 500,
            "code": "internal_error",
            "message": "The server failed to handle this request; the server log has details.",
            "more_info": None,
        }
        return _error_response(500, body)
