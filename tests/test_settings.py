"""Settings: defaults, every malformed value, partial accounts, `.env` loading, and the app
factory's merge of test_config over the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dotenv import dotenv_values

from taskrouter_quickstart import config
from taskrouter_quickstart.config import ConfigError, load_settings
from taskrouter_quickstart.taskrouter import TaskRouter, current_taskrouter

WORKSPACE_MESSAGE = (
    "TWILIO_WORKSPACE_SID must be WS followed by 32 hex characters "
    "(Twilio Console > TaskRouter > Workspaces)"
)


def test_defaults_without_any_setting():
    settings = load_settings({})
    assert settings == {
        "TWILIO_ACCOUNT_SID": None,
        "TWILIO_AUTH_TOKEN": None,
        "TWILIO_API_KEY": None,
        "TWILIO_API_SECRET": None,
        "TWILIO_WORKSPACE_SID": None,
        "TWILIO_WORKFLOW_SID": None,
        "ASSIGNMENT_MODE": "manual",
        "TASKROUTER_BASE_URL": "https://taskrouter.twilio.com",
        "PUBLIC_BASE_URL": None,
        "VALIDATE_SIGNATURES": True,
        "CONTROL_TOKEN": None,
        "TWILIO_HTTP_TIMEOUT": 10.0,
        "TASKROUTER_BACKEND": None,
        "HOST": "127.0.0.1",
        "PORT": 5000,
        "INSTANCE_PATH": None,
        "SANDBOX_DATABASE": None,
        "REDIS_URL": None,
    }
    assert not config.account_configured(settings)
    assert config.backend(settings) == "sandbox"


def test_empty_values_count_as_unset(account_environ):
    environ = {**account_environ, "ASSIGNMENT_MODE": "", "PUBLIC_BASE_URL": "  "}
    settings = load_settings(environ)
    assert settings["ASSIGNMENT_MODE"] == "manual"
    assert settings["PUBLIC_BASE_URL"] is None


def test_a_configured_account(account_environ, sids):
    environ = {
        **account_environ,
        "ASSIGNMENT_MODE": " Accept ",
        "TASKROUTER_BASE_URL": "http://127.0.0.1:8080/",
        "PUBLIC_BASE_URL": "https://abc123.ngrok.app/",
        "VALIDATE_SIGNATURES": "off",
        "CONTROL_TOKEN": "x" * 16,
        "TWILIO_HTTP_TIMEOUT": "2.5",
    }
    settings = load_settings(environ)
    assert settings["TWILIO_WORKSPACE_SID"] == sids.workspace
    assert settings["ASSIGNMENT_MODE"] == "accept"
    assert settings["TASKROUTER_BASE_URL"] == "http://127.0.0.1:8080"
    assert settings["PUBLIC_BASE_URL"] == "https://abc123.ngrok.app"
    assert settings["VALIDATE_SIGNATURES"] is False
    assert settings["CONTROL_TOKEN"] == "x" * 16
    assert settings["TWILIO_HTTP_TIMEOUT"] == 2.5
    assert config.account_configured(settings)
    assert config.backend(settings) == "twilio"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False)],
)
def test_validate_signatures_spellings(raw, expected):
    assert load_settings({"VALIDATE_SIGNATURES": raw})["VALIDATE_SIGNATURES"] is expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TWILIO_WORKSPACE_SID", "WS123", WORKSPACE_MESSAGE),
        ("TWILIO_WORKSPACE_SID", "WW" + "1" * 32, WORKSPACE_MESSAGE),
        (
            "TWILIO_ACCOUNT_SID",
            "AC" + "g" * 32,
            "TWILIO_ACCOUNT_SID must be AC followed by 32 hex characters "
            "(Twilio Console > Account Info > Account SID)",
        ),
        (
            "TWILIO_WORKFLOW_SID",
            "WW" + "2" * 31,
            "TWILIO_WORKFLOW_SID must be WW followed by 32 hex characters "
            "(Twilio Console > TaskRouter > Workspaces > your workspace > Workflows)",
        ),
        (
            "TWILIO_API_KEY",
            "AK" + "8" * 32,
            "TWILIO_API_KEY must be SK followed by 32 hex characters "
            "(Twilio Console > Account > API keys & tokens, the key's SID)",
        ),
        (
            "ASSIGNMENT_MODE",
            "auto",
            "ASSIGNMENT_MODE must be one of: manual, accept (got 'auto') "
            "(see Settings in README.md)",
        ),
        (
            "TASKROUTER_BASE_URL",
            "ftp://example.com",
            "TASKROUTER_BASE_URL must be an http:// or https:// URL with a host "
            "(leave unset for Twilio; see Settings in README.md)",
        ),
        (
            "TASKROUTER_BASE_URL",
            "localhost:8080",
            "TASKROUTER_BASE_URL must be an http:// or https:// URL with a host "
            "(leave unset for Twilio; see Settings in README.md)",
        ),
        (
            "TASKROUTER_BASE_URL",
            "http://example.com:port",
            "TASKROUTER_BASE_URL has a malformed port "
            "(leave unset for Twilio; see Settings in README.md)",
        ),
        (
            "PUBLIC_BASE_URL",
            "https://abc.ngrok.app/?x=1",
            "PUBLIC_BASE_URL must not carry a query string, fragment or credentials "
            "(the https URL printed by `ngrok http 5000`)",
        ),
        (
            "PUBLIC_BASE_URL",
            "abc.ngrok.app",
            "PUBLIC_BASE_URL must be an http:// or https:// URL with a host "
            "(the https URL printed by `ngrok http 5000`)",
        ),
        (
            "VALIDATE_SIGNATURES",
            "maybe",
            "VALIDATE_SIGNATURES must be true or false (see Settings in README.md)",
        ),
        (
            "TWILIO_HTTP_TIMEOUT",
            "ten",
            "TWILIO_HTTP_TIMEOUT must be a number of seconds (seconds; see Settings in README.md)",
        ),
        (
            "TWILIO_HTTP_TIMEOUT",
            "0",
            "TWILIO_HTTP_TIMEOUT must be more than 0 and at most 300 seconds "
            "(seconds; see Settings in README.md)",
        ),
        (
            "TWILIO_HTTP_TIMEOUT",
            "nan",
            "TWILIO_HTTP_TIMEOUT must be more than 0 and at most 300 seconds "
            "(seconds; see Settings in README.md)",
        ),
        (
            "TWILIO_HTTP_TIMEOUT",
            "301",
            "TWILIO_HTTP_TIMEOUT must be more than 0 and at most 300 seconds "
            "(seconds; see Settings in README.md)",
        ),
        (
            "CONTROL_TOKEN",
            "short",
            "CONTROL_TOKEN must be at least 16 characters long (make one with: "
            'python3 -c "import secrets; print(secrets.token_urlsafe(32))")',
        ),
        (
            "CONTROL_TOKEN",
            "a token with spaces in it",
            "CONTROL_TOKEN must not contain spaces or quotes; paste the value alone (make one "
            'with: python3 -c "import secrets; print(secrets.token_urlsafe(32))")',
        ),
        (
            "TWILIO_AUTH_TOKEN",
            '"' + "f" * 32 + '"',
            "TWILIO_AUTH_TOKEN must not contain spaces or quotes; paste the value alone "
            "(Twilio Console > Account Info > Auth Token)",
        ),
    ],
)
def test_malformed_values_name_the_variable_and_where_to_find_it(
    account_environ, name, value, message
):
    with pytest.raises(ConfigError) as caught:
        load_settings({**account_environ, name: value})
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("remove", "add", "message"),
    [
        (
            ("TWILIO_ACCOUNT_SID",),
            {},
            "TWILIO_ACCOUNT_SID is required once a Twilio credential is set or "
            "TASKROUTER_BACKEND=twilio (Twilio Console > Account Info > Account SID)",
        ),
        (
            ("TWILIO_AUTH_TOKEN",),
            {},
            "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) is required with "
            "TWILIO_ACCOUNT_SID (Twilio Console > Account Info > Auth Token)",
        ),
        (
            (),
            {"TWILIO_API_KEY": "SK" + "8" * 32},
            "TWILIO_API_SECRET is required with TWILIO_API_KEY "
            "(Twilio Console > Account > API keys & tokens, shown once when the key is created)",
        ),
        (
            (),
            {"TWILIO_API_SECRET": "secret"},
            "TWILIO_API_KEY is required with TWILIO_API_SECRET "
            "(Twilio Console > Account > API keys & tokens, the key's SID)",
        ),
    ],
)
def test_a_partly_configured_account_names_what_is_missing(account_environ, remove, add, message):
    environ = {key: value for key, value in account_environ.items() if key not in remove}
    with pytest.raises(ConfigError) as caught:
        load_settings({**environ, **add})
    assert str(caught.value) == message


def test_api_key_without_auth_token_needs_the_token_for_signatures(account_environ):
    environ = {
        **account_environ,
        "TWILIO_AUTH_TOKEN": "",
        "TWILIO_API_KEY": "SK" + "8" * 32,
        "TWILIO_API_SECRET": "secret",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert message.startswith("TWILIO_AUTH_TOKEN is required to check X-Twilio-Signature")
    assert "VALIDATE_SIGNATURES=false" in message

    settings = load_settings({**environ, "VALIDATE_SIGNATURES": "false"})
    assert settings["TWILIO_AUTH_TOKEN"] is None
    assert settings["TWILIO_API_KEY"] == "SK" + "8" * 32


def test_read_environment_takes_dotenv_but_real_variables_win(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text("ASSIGNMENT_MODE=accept\nCONTROL_TOKEN=from-dotenv-0123456789\n")
    monkeypatch.setenv("CONTROL_TOKEN", "from-environment-0123456789")
    monkeypatch.delenv("ASSIGNMENT_MODE", raising=False)

    environ = config.read_environment(dotenv)

    assert environ["ASSIGNMENT_MODE"] == "accept"
    assert environ["CONTROL_TOKEN"] == "from-environment-0123456789"
    # .env is read into a new mapping, never into the process environment.
    assert "ASSIGNMENT_MODE" not in os.environ


def test_read_environment_without_a_dotenv_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSIGNMENT_MODE", "accept")
    assert config.read_environment(tmp_path / "missing.env")["ASSIGNMENT_MODE"] == "accept"


def test_create_app_merges_test_config_over_environ(make_app, account_environ):
    app = make_app({**account_environ, "ASSIGNMENT_MODE": "manual"}, ASSIGNMENT_MODE="accept")
    assert app.config["ASSIGNMENT_MODE"] == "accept"
    assert app.config["TESTING"] is True


def test_create_app_validates_test_config_settings_too(make_app):
    with pytest.raises(ConfigError, match=r"^ASSIGNMENT_MODE must be one of: manual, accept"):
        make_app(ASSIGNMENT_MODE="automatic")


def test_one_client_per_app_pointed_at_the_base_url(make_app, account_environ, sids):
    app = make_app({**account_environ, "TASKROUTER_BASE_URL": "http://127.0.0.1:9/"})
    taskrouter = app.extensions["taskrouter"]
    assert isinstance(taskrouter, TaskRouter)
    assert taskrouter.client.taskrouter.base_url == "http://127.0.0.1:9"
    assert taskrouter.client.http_client.timeout == 10.0
    assert taskrouter.workspace_sid == sids.workspace
    assert taskrouter.workflow_sid == sids.workflow
    with app.test_request_context():
        assert current_taskrouter() is taskrouter


def test_env_example_lists_every_setting_and_loads():
    example = Path(__file__).resolve().parents[1] / ".env.example"
    values = dotenv_values(example)
    assert set(values) == config.SETTING_NAMES
    # Secrets are blank in the example, so it loads as "no Twilio account".
    settings = load_settings({key: value or "" for key, value in values.items()})
    assert not config.account_configured(settings)


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in config.SETTING_NAMES:
        assert f"| `{name}` |" in readme


def test_sandbox_database_setting():
    settings = load_settings({"SANDBOX_DATABASE": "data/box.sqlite3"})
    assert settings["SANDBOX_DATABASE"] == os.path.abspath("data/box.sqlite3")


@pytest.mark.parametrize("value", [":memory:", "file:box?mode=memory"])
def test_sandbox_database_must_be_a_file_every_process_shares(value):
    with pytest.raises(ConfigError, match="SANDBOX_DATABASE must be a file path"):
        load_settings({"SANDBOX_DATABASE": value})


def test_the_server_opens_its_sandbox_where_sandbox_database_says(make_app, tmp_path):
    database = tmp_path / "elsewhere" / "box.sqlite3"
    app = make_app({"SANDBOX_DATABASE": str(database)})
    assert app.extensions["sandbox"].store.database == str(database)
    assert database.exists()
