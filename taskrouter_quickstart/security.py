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

from taskrouter_quickstart.errors import ApiError
from taskrouter_quickstart.taskrouter import current_taskrouter
from taskrouter_quickstart.token_cookie import cookie_token, redact

SIGNATURE_HEADER = "X-Twilio-Signature"

# Any of these means a proxy (ngrok, a load balancer, a CDN) relayed the request, so a
# loopback peer address says nothing about who sent it. Browsers and curl send none of them;
# proxies each pick their own, so the list is wide rather than the few ProxyFix reads.
FORWARDING_HEADERS = frozenset(
    name.lower()
    for name in (
        "Forwarded",
        "Forwarded-For",
        "X-Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "X-Real-IP",
        "Via",
        "True-Client-IP",
        "CF-Connecting-IP",
        "X-Client-IP",
        "Client-IP",
        "X-Cluster-Client-IP",
        "Fastly-Client-IP",
        "X-Originating-IP",
        "X-Remote-IP",
        "X-Remote-Addr",
        "X-ProxyUser-IP",
        "Proxy-Client-IP",
        "WL-Proxy-Client-IP",
        "X-Host",
        "X-Coming-From",
        "Coming-From",
    )
)
# Families of headers one proxy or platform adds (X-Forwarded-Port, CF-Ray, X-Envoy-...,
# X-Amzn-Trace-Id, X-Original-Host, X-ARR-ClientIP, ...).
FORWARDING_HEADER_PREFIXES = (
    "x-forwarded-",
    "x-original-",
    "cf-",
    "x-envoy-",
    "x-amzn-",
    "cloudfront-",
    "x-azure-",
    "x-arr-",
    "fastly-",
    "fly-",
    "x-vercel-",
    "x-nf-",
    "x-appengine-",
)

# HEAD and OPTIONS never act. Flask answers HEAD by running the GET view, which for an action
# would create or change work, and an answer to HEAD cannot carry what the action did, so an
# action refuses HEAD (405); it answers OPTIONS itself, without acting, with the methods it
# takes (Flask's own answer would offer HEAD).
NON_ACTING_METHODS = ("HEAD", "OPTIONS")

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
    url = f"{base}{_quoted(path)}"
    return f"{url}?{query}" if query else url


@functools.lru_cache(maxsize=64)
def _quoted(path: str) -> str:
    # The callback's path on every callback: quote() costs more than the rest of the URL.
    return quote(path)


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


class SignedForm(dict):
    """A form of single values, in the shape twilio's RequestValidator reads first.

    Its get_values asks for getall(), then getlist(), then item access: a plain dict raised
    and caught two AttributeErrors per field, more than half of what signing a callback cost.
    """

    def getall(self, name: str) -> list[str]:
        return [self[name]]


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
            redact(url),
            SIGNATURE_HINT,
        )
        raise ApiError(
            403,
            "invalid_signature",
            f"{SIGNATURE_HEADER} {problem} for {redact(url)}: {SIGNATURE_HINT}",
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


def _is_forwarding_header(name: str) -> bool:
    name = name.lower()
    return name in FORWARDING_HEADERS or name.startswith(FORWARDING_HEADER_PREFIXES)


def _request_target() -> str:
    # The request line's target as sent (gunicorn: RAW_URI; Werkzeug's server sets both).
    environ = request.environ
    return environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""


def _is_origin_form() -> bool:
    """Whether the target is a path (GET /create_task): a client that talks to this server
    itself sends that; the absolute form (GET http://host/create_task) is what a proxy gets."""
    target = _request_target()
    return target == "" or target.startswith("/")


def _authority_key(authority: str, scheme: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"//{authority}")
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}.get(scheme)
    return (parts.hostname or "", port if port is not None else default)


def ambiguous_host_problem() -> str | None:
    """Why this request's Host is ambiguous, or None: two Host headers (servers join them
    with a comma), or an absolute-form target naming another host than Host. Either lets a
    request name this machine to one check and another host to the next.
    """
    environ = request.environ
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    host = original.get("HTTP_HOST") or environ.get("HTTP_HOST")
    if host is not None and "," in host:
        return "it carries more than one Host header"
    if host is None or _is_origin_form():
        return None
    try:
        target = urlsplit(_request_target())
    except ValueError:
        return "its request target is neither a path nor a URL"
    scheme = target.scheme.lower()
    if not target.netloc or _authority_key(target.netloc, scheme) != _authority_key(host, scheme):
        return "its request target names another host than its Host header"
    return None


def is_direct_local_request() -> bool:
    """True for a request from this machine that no proxy relayed.

    Direct means: a loopback peer, a Host naming this machine, a path as the request target,
    one unambiguous Host, and none of the headers proxies add.
    """
    original = request.environ.get("werkzeug.proxy_fix.orig", {})
    peer = original.get("REMOTE_ADDR") or request.environ.get("REMOTE_ADDR")
    if not _is_loopback_address(peer):
        return False
    if any(_is_forwarding_header(name) for name, _ in request.headers):
        return False
    if not _is_origin_form() or ambiguous_host_problem() is not None:
        return False
    return is_loopback_host(request.host)


def presented_control_token() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    tokens = request.args.getlist("token")
    if len(tokens) == 1:
        return tokens[0]
    # A browser's ?token= visit was exchanged for this cookie (token_cookie.py).
    return cookie_token() if not tokens else None


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

    The same rule holds for every method, since the actions' GETs act too: Sec-Fetch-Site
    when the browser sends it ("none" is a URL typed in the address bar), else Origin, else
    Referer must be this server. A read-only view may be linked to from anywhere.
    Clients that are not browsers (curl, scripts) send none of these headers and pass.
    """
    if read_only and request.method in ("GET", *NON_ACTING_METHODS):
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
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


def _non_acting_answer():
    """The answer to HEAD or OPTIONS of an action, given without running it."""
    rule_methods = request.url_rule.methods if request.url_rule is not None else ()
    acting = sorted(set(rule_methods or ()) - set(NON_ACTING_METHODS))
    allow = ", ".join(sorted({*acting, "OPTIONS"}))
    if request.method == "OPTIONS":
        return current_app.response_class(status=204, headers={"Allow": allow})
    raise ApiError(
        405,
        "method_not_allowed",
        f"{request.path} acts, and HEAD never does: send {' or '.join(acting)}.",
        headers={"Allow": allow},
    )


def control_required(view: Callable | None = None, *, read_only: bool = False) -> Callable:
    """Serve the view to a direct local request, or to anyone presenting CONTROL_TOKEN.

    A request with an ambiguous Host is refused (400) whoever sends it. Unless read_only,
    a request another site triggers is refused too, GET included, since these GETs create or
    change work (the quickstart's links use GET), and HEAD and OPTIONS are answered without
    running the view.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped_view(**kwargs):
            problem = ambiguous_host_problem()
            if problem is not None:
                raise ApiError(400, "ambiguous_host", f"Refused an ambiguous request: {problem}.")
            if not read_only and request.method in NON_ACTING_METHODS:
                return _non_acting_answer()
            if not is_direct_local_request():
                _check_control_token()
            _check_same_origin(read_only)
            return view(**kwargs)

        if not read_only:
            # Route OPTIONS here instead of to Flask's automatic answer (see NON_ACTING_METHODS).
            wrapped_view.provide_automatic_options = False
            wrapped_view.required_methods = {"OPTIONS"}
        return wrapped_view

    return decorator(view) if view is not None else decorator
