"""The project folder's entry point, the name the quickstart and this README use:
`flask --app app run`, `flask --app app taskrouter status`, `gunicorn 'app:create_app()'`.

The server itself is the taskrouter_quickstart package; installed elsewhere, use
`flask --app taskrouter_quickstart.app` instead.
"""

from taskrouter_quickstart.app import create_app

__all__ = ["create_app"]
