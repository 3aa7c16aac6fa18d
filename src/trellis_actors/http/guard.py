"""What a browser on another site may do to a server: nothing, unless allowed.

Three checks, made before authentication:

* **Host.** A request whose ``Host`` names a host the server does not serve is refused
  with ``421``: with DNS rebinding, a page on ``attacker.example`` whose name later
  resolves to ``127.0.0.1`` reaches a local server, but its requests still say
  ``Host: attacker.example``. Served: IP literals, ``localhost``, the bind address's host
  and the names given with ``--allowed-host`` (``.example.com`` allows its subdomains,
  ``*`` any name).
* **Origin.** A state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``) that a
  browser sent from another origin (its ``Origin`` header) is refused with ``403`` unless
  that origin is allowed with ``--cors-origin``; allowed origins also get CORS headers and
  preflight answers. Clients that are not browsers send no ``Origin`` and are not affected.
* **Content-Type.** An API request with a body must say ``Content-Type: application/json``
  (``415`` otherwise): a cross-site ``<form enctype="text/plain">`` or a ``no-cors``
  ``fetch`` cannot set it, so they cannot smuggle JSON in. The web UI's forms (under
  ``/ui``) are form-encoded and protected by their CSRF token.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from quart import Request, Response

from .errors import ApiError

#: Methods that change state: what another origin may not send.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Host names a server always answers to.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
_CORS_HEADERS = "Authorization, Content-Type, Last-Event-ID"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Guard:
    """The hosts a server answers to and the other origins allowed to use it."""

    #: Host names besides IP literals and ``localhost``: ``api.example.com``,
    #: ``.example.com`` (it and its subdomains) or ``*`` (any).
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    #: Origins (``https://app.example.com``) whose pages may call the API.
    cors_origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, bind: str | None = None, hosts: tuple[str, ...] = (), origins: tuple[str, ...] = ()
    ) -> Guard:
        """A guard for a server bound to ``bind`` (its host is served too); ValueError
        for an origin that is not ``scheme://host[:port]``."""
        names = {name.strip().lower().rstrip(".") for name in hosts if name.strip()}
        if bind is not None:
            host = bind.rpartition(":")[0].strip("[]").lower()
            if host and not _is_ip(host):
                names.add(host)
        return cls(frozenset(names), frozenset(_origin(text) for text in origins))

    def check(self, request: Request) -> Response | None:
        """Raise an :class:`ApiError` for a request refused; a preflight answer for an
        allowed origin's ``OPTIONS``; ``None`` to go on."""
        host = _hostname(request.headers.get("Host", ""))
        if host is not None and not self.serves(host):
            raise ApiError(
                421,
                "misdirected_request",
                f"this server does not answer to the host {host!r}; start it with "
                "--allowed-host NAME (env TRELLIS_ALLOWED_HOSTS) to serve that name",
                field="Host",
            )
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in self.cors_origins
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if allowed and preflight:
            return self._preflight(str(origin))
        if request.method in STATE_CHANGING:
            if not (origin is None or allowed or self._same_origin(origin, request)):
                raise ApiError(
                    403,
                    "cross_origin",
                    f"requests that change state are not accepted from the origin "
                    f"{origin!r}; allow it with --cors-origin (env TRELLIS_CORS_ORIGINS)",
                    field="Origin",
                )
            if _has_body(request) and not _is_ui(request.path):
                kind = request.headers.get("Content-Type", "")
                if kind.partition(";")[0].strip().lower() != "application/json":
                    raise ApiError(
                        415,
                        "unsupported_media_type",
                        "a request body must be JSON sent with 'Content-Type: "
                        f"application/json' (got {kind[:64]!r})",
                        field="Content-Type",
                    )
        return None

    def serves(self, host: str) -> bool:
        if host in LOOPBACK_NAMES or _is_ip(host) or "*" in self.allowed_hosts:
            return True
        if host in self.allowed_hosts:
            return True
        return any(
            name.startswith(".") and (host.endswith(name) or host == name[1:])
            for name in self.allowed_hosts
        )

    def decorate(self, request: Request, response: Response) -> None:
        """CORS headers on answers to an allowed origin."""
        origin = request.headers.get("Origin")
        if origin is not None and origin in self.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-ID"
            response.vary.add("Origin")

    def _preflight(self, origin: str) -> Response:
        response = Response("", status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        return response

    @staticmethod
    def _same_origin(origin: str, request: Request) -> bool:
        """Whether ``origin`` is this server as the request reached it (its Host)."""
        try:
            parts = urlsplit(origin)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            return False
        if parts.scheme not in _DEFAULT_PORTS or parts.hostname is None:
            return False  # "null" (a sandboxed page, a file) is nobody's own origin
        host = request.headers.get("Host", "")
        try:
            asked = urlsplit(f"//{host}")
            asked_port = asked.port
        except ValueError:
            return False
        if asked.hostname is None or asked.hostname != parts.hostname:
            return False
        return asked_port is None or asked_port == port


def _origin(text: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin``."""
    parts = urlsplit(text.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(
            f"{text!r} is not an origin: give scheme://host[:port], e.g. https://app.example.com"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _hostname(header: str) -> str | None:
    """The host a ``Host`` header names (without port or brackets), lower case; ``None``
    when there is no header."""
    if not header:
        return None
    try:
        name = urlsplit(f"//{header}").hostname
    except ValueError:
        return header.lower()  # malformed: served by no rule but "*"
    return (name or header).lower().rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _has_body(request: Request) -> bool:
    """Whether the request says it has a body (a typed empty one counts)."""
    headers = request.headers
    length = headers.get("Content-Length")
    if length is not None and length.strip() not in ("", "0"):
        return True
    return "Transfer-Encoding" in headers or "Content-Type" in headers


def _is_ui(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")
