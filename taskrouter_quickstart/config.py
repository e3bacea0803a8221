"""Every setting the server reads, from the environment and `.env`, validated once.

A bad value raises ConfigError with one line naming the variable and where to find its value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

# The `.env` of the folder the server starts in (the project folder for `make run`).
DOTENV_PATH = Path(".env")

ASSIGNMENT_MODES = ("manual", "accept")
BACKENDS = ("twilio", "sandbox")
DEFAULT_TASKROUTER_BASE_URL = "https://taskrouter.twilio.com"
CONTROL_TOKEN_MIN_LENGTH = 16
MAX_HTTP_TIMEOUT = 300.0

# The settings that make up a Twilio account; with none of them set the server has no backend.
ACCOUNT_SETTINGS = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY",
    "TWILIO_API_SECRET",
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line meant for a person."""


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[Setting, object], object]
    default: object
    where: str

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"{self.name} {what} ({self.where})")


def _sid(prefix: str) -> Callable[[Setting, object], str]:
    pattern = re.compile(rf"{prefix}[0-9a-fA-F]{{32}}")

    def parse(setting: Setting, value: object) -> str:
        text = str(value)
        if not pattern.fullmatch(text):
            raise setting.error(f"must be {prefix} followed by 32 hex characters")
        return text

    return parse


def _secret(setting: Setting, value: object) -> str:
    text = str(value)
    if re.search(r"[\s'\"]", text):
        raise setting.error("must not contain spaces or quotes; paste the value alone")
    return text


def _control_token(setting: Setting, value: object) -> str:
    text = _secret(setting, value)
    if len(text) < CONTROL_TOKEN_MIN_LENGTH:
        raise setting.error(f"must be at least {CONTROL_TOKEN_MIN_LENGTH} characters long")
    return text


def _mode(setting: Setting, value: object) -> str:
    text = str(value).strip().lower()
    if text not in ASSIGNMENT_MODES:
        allowed = ", ".join(ASSIGNMENT_MODES)
        raise setting.error(f"must be one of: {allowed} (got {str(value)!r})")
    return text


def _backend(setting: Setting, value: object) -> str:
    text = str(value).strip().lower()
    if text not in BACKENDS:
        allowed = ", ".join(BACKENDS)
        raise setting.error(f"must be one of: {allowed}, or unset (got {str(value)!r})")
    return text


def _port(setting: Setting, value: object) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise setting.error("must be a port number from 1 to 65535")
    return int(text)


def _host(setting: Setting, value: object) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9.:-]+", text):
        raise setting.error("must be a host name or IP address, such as 127.0.0.1")
    return text


def _path(setting: Setting, value: object) -> str:
    return os.path.abspath(os.path.expanduser(str(value).strip()))


def _database(setting: Setting, value: object) -> str:
    text = str(value).strip()
    if text.startswith(":") or text.lower().startswith("file:"):
        raise setting.error(
            "must be a file path: every server process and the flask commands open the same file"
        )
    return _path(setting, text)


def _url(setting: Setting, value: object) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise setting.error("must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise setting.error("must not carry a query string, fragment or credentials")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise setting.error("has a malformed port") from None
    return text.rstrip("/")


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(setting: Setting, value: object) -> str:
    # The value may hold a password: no message here repeats it.
    text = str(value).strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise setting.error("is not a URL, such as redis://127.0.0.1:6379/0") from None
    if parts.scheme not in REDIS_SCHEMES:
        raise setting.error(
            "must be a redis://, rediss:// or unix:// URL, such as redis://127.0.0.1:6379/0"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise setting.error("must name the socket's path, such as unix:///run/redis.sock")
        return _redis_options_checked(setting, text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise setting.error("has a malformed port") from None
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise setting.error("may end only in a database number, such as /0")
    return _redis_options_checked(setting, text)


def _redis_options_checked(setting: Setting, text: str) -> str:
    """The URL, once redis-py reads its options (?socket_timeout=, ?db=, ?ssl_cert_reqs=,
    ...) as it will: a bad one stops start-up here, not at the first callback."""
    try:
        import redis  # Only with REDIS_URL set: the embedded default needs no redis package.
    except ImportError as exc:
        raise setting.error(
            f"needs the redis package ({exc}): run make run, or "
            ".venv/bin/pip install -r requirements.txt"
        ) from None

    try:
        pool = redis.Redis.from_url(text).connection_pool
        # Made, not connected: an option its kind of connection does not take fails here.
        pool.connection_class(**pool.connection_kwargs)
    except (ValueError, TypeError, redis.RedisError):
        # redis-py's own words may repeat the value, and a query may hold a password.
        raise setting.error("has a malformed option in its query") from None
    return text


def _boolean(setting: Setting, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise setting.error("must be true or false")


def _timeout(setting: Setting, value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise setting.error("must be a number of seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_HTTP_TIMEOUT:
        raise setting.error(f"must be more than 0 and at most {MAX_HTTP_TIMEOUT:g} seconds")
    return seconds


_CONSOLE_ACCOUNT = "Twilio Console > Account Info"
_CONSOLE_KEYS = "Twilio Console > Account > API keys & tokens"

SETTINGS = (
    Setting("TWILIO_ACCOUNT_SID", _sid("AC"), None, f"{_CONSOLE_ACCOUNT} > Account SID"),
    Setting("TWILIO_AUTH_TOKEN", _secret, None, f"{_CONSOLE_ACCOUNT} > Auth Token"),
    Setting("TWILIO_API_KEY", _sid("SK"), None, f"{_CONSOLE_KEYS}, the key's SID"),
    Setting(
        "TWILIO_API_SECRET",
        _secret,
        None,
        f"{_CONSOLE_KEYS}, shown once when the key is created",
    ),
    Setting(
        "TWILIO_WORKSPACE_SID",
        _sid("WS"),
        None,
        "Twilio Console > TaskRouter > Workspaces",
    ),
    Setting(
        "TWILIO_WORKFLOW_SID",
        _sid("WW"),
        None,
        "Twilio Console > TaskRouter > Workspaces > your workspace > Workflows",
    ),
    Setting("ASSIGNMENT_MODE", _mode, "manual", "see Settings in README.md"),
    Setting(
        "TASKROUTER_BACKEND",
        _backend,
        None,
        "unset: a Twilio account when one is configured, else the local sandbox",
    ),
    Setting("HOST", _host, "127.0.0.1", "the address `make run` serves on"),
    Setting("PORT", _port, 5000, "the port `make run` serves on"),
    Setting(
        "INSTANCE_PATH",
        _path,
        None,
        "a writable folder; default instance/ beside app.py",
    ),
    Setting(
        "SANDBOX_DATABASE",
        _database,
        None,
        "the sandbox's SQLite file; default sandbox.sqlite3 in INSTANCE_PATH",
    ),
    Setting(
        "TASKROUTER_BASE_URL",
        _url,
        DEFAULT_TASKROUTER_BASE_URL,
        "leave unset for Twilio; see Settings in README.md",
    ),
    Setting(
        "PUBLIC_BASE_URL",
        _url,
        None,
        "the https URL printed by `ngrok http 5000`",
    ),
    Setting("VALIDATE_SIGNATURES", _boolean, True, "see Settings in README.md"),
    Setting(
        "CONTROL_TOKEN",
        _control_token,
        None,
        'make one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
    ),
    Setting("TWILIO_HTTP_TIMEOUT", _timeout, 10.0, "seconds; see Settings in README.md"),
    Setting(
        "REDIS_URL",
        _redis_url,
        None,
        "unset keeps the callback log in SQLite; see Running on several hosts in README.md",
    ),
)

SETTING_NAMES = frozenset(setting.name for setting in SETTINGS)
_BY_NAME = {setting.name: setting for setting in SETTINGS}


def read_environment(dotenv_path: Path = DOTENV_PATH) -> dict[str, str]:
    """The process environment over the values in `.env`: a real variable always wins.

    The file is read into a new mapping rather than into os.environ so that loading
    settings changes nothing outside the app.
    """
    values = {key: value for key, value in dotenv_values(dotenv_path).items() if value is not None}
    values.update(os.environ)
    return values


def load_settings(environ: Mapping[str, object] | None = None) -> dict[str, object]:
    """Read and validate every setting from `environ` (the environment and `.env` by default).

    Returns a plain dict keyed by the variable names. An empty value counts as unset, so a
    copied `.env.example` with blank secrets behaves like a missing variable.
    """
    if environ is None:
        environ = read_environment()
    settings: dict[str, object] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            settings[setting.name] = setting.default
        else:
            settings[setting.name] = setting.parse(setting, raw)
    _check_account(settings)
    return settings


def backend(settings: Mapping[str, object]) -> str:
    """ "twilio" or "sandbox": the explicit TASKROUTER_BACKEND, else whether an account is set."""
    chosen = settings.get("TASKROUTER_BACKEND")
    if chosen:
        return str(chosen)
    return "twilio" if account_configured(settings) else "sandbox"


def local_base_url(settings: Mapping[str, object]) -> str:
    """This server's own address as seen from this machine (where the sandbox calls back)."""
    host = str(settings.get("HOST") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.get('PORT') or 5000}"


def account_configured(settings: Mapping[str, object]) -> bool:
    """True when any Twilio credential is set: the server then talks to a Twilio account."""
    return any(settings.get(name) for name in ACCOUNT_SETTINGS)


def _check_account(settings: Mapping[str, object]) -> None:
    """A partly configured account is a mistake worth stopping for, not a fallback."""
    if backend(settings) == "sandbox":
        # There TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN only pin the sandbox's credentials.
        if settings["TWILIO_API_KEY"] or settings["TWILIO_API_SECRET"]:
            raise _BY_NAME["TWILIO_API_KEY"].error(
                "is not used by the local sandbox (TASKROUTER_BACKEND=sandbox): unset it, or "
                "unset TASKROUTER_BACKEND to use your Twilio account"
            )
        return

    def missing(name: str, what: str) -> ConfigError:
        return _BY_NAME[name].error(what)

    if not settings["TWILIO_ACCOUNT_SID"]:
        raise missing(
            "TWILIO_ACCOUNT_SID",
            "is required once a Twilio credential is set or TASKROUTER_BACKEND=twilio",
        )
    if settings["TWILIO_API_KEY"] and not settings["TWILIO_API_SECRET"]:
        raise missing("TWILIO_API_SECRET", "is required with TWILIO_API_KEY")
    if settings["TWILIO_API_SECRET"] and not settings["TWILIO_API_KEY"]:
        raise missing("TWILIO_API_KEY", "is required with TWILIO_API_SECRET")
    if not settings["TWILIO_AUTH_TOKEN"] and not settings["TWILIO_API_KEY"]:
        raise missing(
            "TWILIO_AUTH_TOKEN",
            "(or TWILIO_API_KEY and TWILIO_API_SECRET) is required with TWILIO_ACCOUNT_SID",
        )
    if not settings["TWILIO_AUTH_TOKEN"] and settings["VALIDATE_SIGNATURES"]:
        raise missing(
            "TWILIO_AUTH_TOKEN",
            "is required to check X-Twilio-Signature on callbacks, even when an API key "
            "makes the REST calls (or set VALIDATE_SIGNATURES=false, which accepts "
            "unsigned callbacks)",
        )
