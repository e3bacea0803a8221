"""The peer of benchmark 1: a bare Flask app answering the assignment callback's JSON.

No signature check, no form parsing, no log: the floor a Flask handler costs under gunicorn.
"""

from __future__ import annotations

from flask import Flask, Response

from taskrouter_quickstart.routes.assignment import ANSWERS


def create_app() -> Flask:
    app = Flask(__name__)
    answer = ANSWERS["accept"]

    @app.post("/assignment_callback")
    def assignment_callback():
        return Response(answer, status=200, mimetype="application/json")

    return app
