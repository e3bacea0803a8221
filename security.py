"""Who may call what: Twilio's X-Twilio-Signature on callbacks, and the guard on actions.

Actions (creating tasks, answering reservations, the page) are for this machine or CONTROL_TOKEN.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit

from flask import current_app, request
from twilio.request_validator import RequestValidator, compare

from routes import ApiError
from taskrouter import current_taskrouter

SIGNATURE_HEADER = "X-Twilio-Signature"

# Any of these means a proxy (ngrok, a load balancer) relayed the request, so a loopback
# peer address says nothing about who sent it.
FORWARDING_HEADERS = (
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
)

SIGNATURE_HINT = (
    "set PUBLIC_BASE_URL to the URL Twilio calls (the ngrok https URL) "
    "and check that TWILIO_AUTH_TOKEN belongs to the account that owns the workspace"
)

CONTROL_TOKEN_HINT = (
    "set CONTROL_TOKEN in .env (make one with: "
    'python3 -c "import secrets; print(secrets.token_urlsafe(32))"), restart the server, '
    "and send it as 'Authorization: Bearer <token>' or '?token=<token>'"
)


def url_twilio_signed(
    public_base_url: str | None, scheme: str, host: str, path: str, query: str = ""
) -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL's when set, else the one the request reached,
    with the host as it was sent (Twilio signs the URL as typed in the Workflow, so it is not
    decoded or lowercased) and the raw query string.
    """
    base = public_base_url or f"{scheme}://{host}"
    url = f"{base}{quote(path)}"
    return f"{url}?{query}" if query else url


def signed_url() -> str:
    """url_twilio_signed for this request (the view's side of the callback's two paths).

    The query string is taken raw: Werkzeug's request.url re-quotes it, and a single changed
    escape (such as %27) breaks the signature.
    """
    public_base_url = current_app.config.get("PUBLIC_BASE_URL")
    path = request.path if public_base_url else request.root_path + request.path
    query = request.query_string.decode("latin-1")
    return url_twilio_signed(public_base_url, request.scheme, request.host, path, query)


def _signed_params() -> object:
    # A JSON body is signed through a bodySHA256 query parameter, the validator takes it raw.
    # An empty one is no body hash to the validator, which would then crash on a string.
    if request.args.get("bodySHA256"):
        return request.get_data(as_text=True)
    if request.method == "POST":
        return request.form
    return {}


@functools.lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def signature_matches(auth_token: str, url: str, params: object, signature: str) -> bool:
    """Whether X-Twilio-Signature `signature` is Twilio's for `url` and `params`."""
    validator = _validator(auth_token)
    # Twilio signs the URL it called, which is the one rebuilt here (with or without its
    # port): one HMAC settles a good callback. validate() computes both port variants
    # every time and checks a bodySHA256, so it decides the rest.
    if isinstance(params, Mapping) and compare(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)


def signature_required(view: Callable) -> Callable:
    """Answer 403 unless X-Twilio-Signature is valid for this request (VALIDATE_SIGNATURES)."""

    @functools.wraps(view)
    def wrapped_view(**kwargs):
        if not current_app.config["VALIDATE_SIGNATURES"]:
            current_app.logger.warning(
                "%s %s accepted without checking %s: VALIDATE_SIGNATURES is false",
                request.method,
                request.path,
                SIGNATURE_HEADER,
            )
            return view(**kwargs)

        auth_token = current_taskrouter().auth_token
        if not auth_token:
            raise ApiError(
                503, "not_configured", f"TWILIO_AUTH_TOKEN is needed to check {SIGNATURE_HEADER}"
            )
        signature = request.headers.get(SIGNATURE_HEADER, "")
        url = signed_url()
        if signature and signature_matches(auth_token, url, _signed_params(), signature):
            return view(**kwargs)

        problem = "does not match" if signature else "is missing"
        current_app.logger.warning(
            "Refused %s %s: %s %s for %s. Hint: %s",
            request.method,
            request.path,
            SIGNATURE_HEADER,
            problem,
            url,
            SIGNATURE_HINT,
        )
        raise ApiError(
            403,
            "invalid_signature",
            f"{SIGNATURE_HEADER} {problem} for {url}: {SIGNATURE_HINT}",
        )

    return wrapped_view


def _is_loopback_address(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def is_loopback_host(host: str) -> bool:
    # The Host header must name this machine too, so a page on another site whose name
    # resolves to 127.0.0.1 (DNS rebinding) is not taken for a local request.
    try:
        hostname = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    if not hostname:
        return False
    return hostname == "localhost" or _is_loopback_address(hostname)


def is_direct_local_request() -> bool:
    """True for a request from this machine that no proxy relayed."""
    original = request.environ.get("werkzeug.proxy_fix.orig", {})
    peer = original.get("REMOTE_ADDR") or request.environ.get("REMOTE_ADDR")
    if not _is_loopback_address(peer):
        return False
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    return is_loopback_host(request.host)


def presented_control_token() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    tokens = request.args.getlist("token")
    return tokens[0] if len(tokens) == 1 else None


def _check_control_token() -> None:
    expected = current_app.config.get("CONTROL_TOKEN")
    if not expected:
        raise ApiError(
            403,
            "control_token_not_set",
            "This action is served only to requests made directly on this machine; this one "
            f"came through a proxy or from the network. To allow it, {CONTROL_TOKEN_HINT}.",
        )
    presented = presented_control_token()
    if presented is None:
        raise ApiError(
            401,
            "control_token_required",
            "This request did not come directly from this machine: send CONTROL_TOKEN as "
            "'Authorization: Bearer <token>' or '?token=<token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.encode(), str(expected).encode()):
        raise ApiError(
            403, "control_token_invalid", "The control token does not match CONTROL_TOKEN."
        )


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _own_origins() -> set[str]:
    origins = {request.host_url.rstrip("/").lower()}
    public_base_url = current_app.config.get("PUBLIC_BASE_URL")
    if public_base_url:
        origins.add(_origin_of(public_base_url) or "")
    return origins


def _check_same_origin(read_only: bool) -> None:
    """Refuse requests another web page makes a browser send (cross-site request forgery).

    Clients that are not browsers (curl, scripts) send none of these headers and pass.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        if read_only or fetch_site not in ("cross-site", "same-site"):
            return
        refused = True
    elif fetch_site is not None:
        refused = fetch_site not in ("same-origin", "none")
    elif "Origin" in request.headers:
        refused = _origin_of(request.headers["Origin"]) not in _own_origins()
    elif "Referer" in request.headers:
        refused = _origin_of(request.headers["Referer"]) not in _own_origins()
    else:
        refused = False
    if refused:
        raise ApiError(
            403,
            "cross_site_request",
            f"Refused a request to {request.path} sent from another site: use the buttons on "
            "this server's own page, or call it with curl.",
        )


def control_required(view: Callable | None = None, *, read_only: bool = False) -> Callable:
    """Serve the view to a direct local request, or to anyone presenting CONTROL_TOKEN.

    Unless read_only, a GET another site triggers is refused too, since these GETs create
    or change work (the quickstart's links use GET).
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped_view(**kwargs):
            if not is_direct_local_request():
                _check_control_token()
            _check_same_origin(read_only)
            return view(**kwargs)

        return wrapped_view

    return decorator(view) if view is not None else decorator
