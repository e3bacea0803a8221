"""Which TaskRouter the server talks to: a Twilio account, or the local sandbox it mounts itself
when no account is configured (or TASKROUTER_BACKEND=sandbox).
"""

from __future__ import annotations

import pytest

from taskrouter_quickstart import config
from taskrouter_quickstart.config import ConfigError, load_settings


def _sandbox(app):
    return app.extensions["sandbox"]


def test_no_account_runs_the_sandbox_and_points_the_client_at_it(make_app):
    app = make_app({})
    box = _sandbox(app)
    taskrouter = app.extensions["taskrouter"]

    assert app.config["BACKEND"] == "sandbox"
    assert taskrouter.base_url == "http://127.0.0.1:5000/sandbox"
    assert taskrouter.client.taskrouter.base_url == "http://127.0.0.1:5000/sandbox"
    assert taskrouter.workspace_sid == box.seeded.workspace_sid
    assert taskrouter.workflow_sid == box.seeded.workflow_sid
    # Callbacks from the sandbox are signed with its token, so the app checks with it.
    assert taskrouter.auth_token == box.auth_token
    assert app.config["TWILIO_ACCOUNT_SID"] == box.account_sid


def test_explicit_sandbox_pins_its_credentials_from_the_account_settings(
    make_app, account_environ, sids, auth_token
):
    app = make_app({**account_environ, "TASKROUTER_BACKEND": "sandbox"})
    box = _sandbox(app)
    assert (box.account_sid, box.auth_token) == (sids.account, auth_token)
    # The account's workspace and workflow SIDs are taken as given.
    assert app.extensions["taskrouter"].workspace_sid == sids.workspace


def test_an_account_means_no_sandbox(app):
    assert app.config["BACKEND"] == "twilio"
    assert "sandbox" not in app.extensions
    assert app.extensions["taskrouter"].base_url == "https://taskrouter.twilio.com"


def test_the_sandbox_keeps_its_credentials_across_restarts(make_app):
    first = _sandbox(make_app({}))
    again = _sandbox(make_app({}))
    assert (again.account_sid, again.auth_token) == (first.account_sid, first.auth_token)
    assert again.seeded.workspace_sid == first.seeded.workspace_sid


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"TASKROUTER_BACKEND": "local"},
            "TASKROUTER_BACKEND must be one of: twilio, sandbox, or unset (got 'local')",
        ),
        (
            {"TASKROUTER_BACKEND": "twilio"},
            "TWILIO_ACCOUNT_SID is required once a Twilio credential is set or "
            "TASKROUTER_BACKEND=twilio",
        ),
        (
            {"TASKROUTER_BACKEND": "sandbox", "TWILIO_API_KEY": "SK" + "8" * 32},
            "TWILIO_API_KEY is not used by the local sandbox",
        ),
        ({"PORT": "70000"}, "PORT must be a port number from 1 to 65535"),
        ({"PORT": "http"}, "PORT must be a port number from 1 to 65535"),
        ({"HOST": "local host"}, "HOST must be a host name or IP address"),
    ],
)
def test_bad_backend_settings_stop_start_up(environ, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert str(caught.value).startswith(message)


def test_backend_follows_the_account_unless_chosen(account_environ):
    assert config.backend(load_settings({})) == "sandbox"
    assert config.backend(load_settings(account_environ)) == "twilio"
    assert config.backend(load_settings({"TASKROUTER_BACKEND": "Sandbox"})) == "sandbox"


def test_the_page_names_the_sandbox_and_never_its_token(make_app):
    app = make_app({})
    page = app.test_client().get("/").get_data(as_text=True)
    assert "local TaskRouter sandbox" in page
    assert "http://127.0.0.1:5000/sandbox" in page
    assert _sandbox(app).seeded.workspace_sid in page
    assert _sandbox(app).auth_token not in page
