"""The ``http_check`` task type, opt-in and fenced by an :class:`HttpCheckPolicy`.

A check requests a URL and reports its status and latency, so it lets whoever may submit
tasks make the server send requests. The policy bounds what they can ask for: http and
https only, a few methods, a few request headers, a bounded timeout, and no private,
loopback, link-local, multicast, reserved or cloud-metadata address unless the policy's
``allow`` list opens it. Submitting refuses what the payload alone shows (scheme, method,
headers, timeout, a literal address, a known metadata host name); running refuses a host
name whose addresses are refused, checked on the resolved addresses themselves, and the
connection goes to the address that was checked (no second lookup to rebind).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import pydantic
import trio
from typing_extensions import TypedDict  # pydantic needs it, not typing's, before 3.12

from .errors import ConfigurationError, ValidationError

if TYPE_CHECKING:
    import httpcore

    from .context import TaskContext

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The options ``http_check`` is registered with.
TASK_OPTIONS: Mapping[str, Any] = {"name": "http_check", "queue": "checks", "max_attempts": 1}

#: Addresses of cloud instance-metadata services: refused even inside an allowed network,
#: unless the allow-list names the address itself.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::123",
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
        "192.0.0.192",  # Oracle Cloud
    )
)
#: Host names of metadata services, refused at submit unless allowed by name.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

#: What a check's metrics label may be.
NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP method or header name
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class HttpCheckPolicy:
    """What ``http_check`` may request. ``App(http_check=HttpCheckPolicy())`` enables it.

    ``allow`` opens addresses refused by default: networks (``"10.0.0.0/8"``,
    ``"127.0.0.1/32"``) and host names (``"status.internal"``, ``"*.internal"`` for its
    subdomains); everything a named host resolves to is accepted. ``methods`` and
    ``headers`` are all a payload may use (header names compare without case); a
    payload's ``timeout`` is at most ``max_timeout`` seconds.
    """

    allow: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("GET", "HEAD")
    headers: tuple[str, ...] = ("Accept", "Accept-Language", "Cache-Control", "User-Agent")
    max_timeout: float = 30.0
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("allow", "methods", "headers"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ConfigurationError(f"HttpCheckPolicy.{name} takes a list, not a string")
            object.__setattr__(self, name, tuple(value))
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in self.allow:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                host = _normal_host(entry)
                if not re.fullmatch(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*", host):
                    raise ConfigurationError(
                        f"HttpCheckPolicy.allow: {entry!r} is neither a network like "
                        "10.0.0.0/8 nor a host name like status.internal or *.internal"
                    ) from None
                hosts.add(host)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        if not self.methods or not all(
            isinstance(m, str) and _TOKEN.fullmatch(m) and m == m.upper() for m in self.methods
        ):
            raise ConfigurationError(
                "HttpCheckPolicy.methods must be upper-case HTTP methods, e.g. ('GET', 'HEAD')"
            )
        if not all(isinstance(h, str) and _TOKEN.fullmatch(h) for h in self.headers):
            raise ConfigurationError("HttpCheckPolicy.headers must be HTTP header names")
        if not (0 < self.max_timeout < math.inf):  # NaN fails this too
            raise ConfigurationError("HttpCheckPolicy.max_timeout must be a number of seconds > 0")

    @property
    def default_timeout(self) -> float:
        return min(DEFAULT_TIMEOUT, self.max_timeout)

    def allows_host(self, host: str) -> bool:
        """Whether the allow-list names ``host`` (or a ``*.`` entry covers it)."""
        host = _normal_host(host)
        if host in self._hosts:
            return True
        return any(h.startswith("*.") and host.endswith(h[1:]) for h in self._hosts)

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be checked (``"a loopback address"``), or None."""
        if address in METADATA_ADDRESSES:
            exact = ipaddress.ip_network(address)
            return None if exact in self._networks else "a cloud metadata address"
        if any(address in network for network in self._networks):
            return None
        for inner in _embedded_ipv4(address):
            reason = self.refusal(inner)
            if reason is not None:
                return reason
        return _kind_refused(address)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Raise ValidationError if ``host``, at ``address``, may not be checked."""
        carried = [address, *_embedded_ipv4(address)]
        if self.allows_host(host) and not any(a in METADATA_ADDRESSES for a in carried):
            return
        reason = self.refusal(address)
        if reason is not None:
            raise ValidationError(
                f"http_check refuses {host}: it is {reason}; list it in "
                "HttpCheckPolicy(allow=[...]) to check it",
                field="payload.url",
            )


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".").strip("[]")


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        inner.append(address.teredo[1])
    if address in _NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in inner if a is not None]


def _kind_refused(address: IPAddress) -> str | None:
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a globally routable address"
    return None


# -- the payload -------------------------------------------------------------------------


class HttpCheckResult(TypedDict):
    """What a check reports; ``ok`` is whether the target answered ``expected_status``."""

    name: str
    status_code: int | None
    latency_ms: float
    ok: bool
    error: str | None


class _PayloadBase(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    url: str
    expected_status: int = pydantic.Field(200, ge=100, le=599)
    name: str | None = pydantic.Field(
        None,
        pattern=NAME_PATTERN,
        description="the label of this check's metrics (default: the URL's host)",
    )


def payload_model(policy: HttpCheckPolicy) -> type[pydantic.BaseModel]:
    """The payload of ``http_check`` under ``policy``, checked when a task is submitted."""
    allowed_headers = {h.lower() for h in policy.headers}
    method_type: Any = Literal[tuple(policy.methods)]  # an enum in the JSON Schema

    def check_url(url: str) -> str:
        parsed = _parse_url(url)
        if parsed.userinfo and "authorization" not in allowed_headers:
            raise ValueError("credentials in the URL are not allowed (no Authorization header)")
        host = parsed.host
        if _normal_host(host) in METADATA_HOSTS and not policy.allows_host(host):
            raise ValueError(f"{host} is a cloud metadata host; http_check refuses it")
        try:
            address = ipaddress.ip_address(_normal_host(host))
        except ValueError:
            return url  # a host name: its addresses are checked when the check runs
        reason = policy.refusal(address)
        if reason is not None:
            raise ValueError(
                f"{host} is {reason}; list it in HttpCheckPolicy(allow=[...]) to check it"
            )
        return url

    def check_headers(headers: dict[str, str]) -> dict[str, str]:
        for key, value in headers.items():
            if key.lower() not in allowed_headers:
                raise ValueError(
                    f"header {key!r} is not allowed; http_check sends only "
                    + ", ".join(policy.headers)
                )
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {key!r} has a line break or NUL in its value")
        return headers

    def default_name(payload: Any) -> Any:
        if payload.name is None:
            host = _parse_url(payload.url).raw_host.decode("ascii").strip("[]")
            return payload.model_copy(update={"name": _NAME_CHARS.sub("_", host)[:64]})
        return payload

    model: type[pydantic.BaseModel] = pydantic.create_model(
        "HttpCheckPayload",
        __base__=_PayloadBase,
        __module__=__name__,
        __doc__="The payload of http_check: a URL and what to expect of it.",
        __validators__={
            "_url": pydantic.field_validator("url")(check_url),
            "_headers": pydantic.field_validator("headers")(check_headers),
            # create_model's annotation says plain callables; it takes decorated ones
            "_name": cast(Any, pydantic.model_validator(mode="after")(default_name)),
        },
        method=(method_type, policy.methods[0] if "GET" not in policy.methods else "GET"),
        timeout=(
            float,
            pydantic.Field(
                policy.default_timeout, gt=0, le=policy.max_timeout, allow_inf_nan=False
            ),
        ),
        headers=(dict[str, str], pydantic.Field(default_factory=dict, max_length=32)),
    )
    return model


def _parse_url(url: str) -> Any:
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError("http_check takes http:// and https:// URLs only")
    if not parsed.host:
        raise ValueError("the URL has no host")
    return parsed


# -- the handler -------------------------------------------------------------------------


def http_check_handler(
    policy: HttpCheckPolicy,
) -> Callable[[TaskContext, Any], Awaitable[HttpCheckResult]]:
    """The ``http_check`` handler for ``policy`` (its payload annotation is the model
    :func:`payload_model` builds, so submitting checks the payload)."""

    async def http_check(ctx: TaskContext, payload: Any) -> HttpCheckResult:
        """Request a URL and record whether it answered as expected, and how fast.

        Payload: ``{"url", "method"?: "GET", "timeout"?: 10, "expected_status"?: 200,
        "headers"?: {}, "name"?}``. The check succeeds when it could be made: a target
        that is down gives ``{"ok": false, ...}`` with the reason, so schedules of checks
        make an uptime monitor (see ``trellis_http_check_up``). A target whose address
        the policy refuses fails the task, without retries.
        """
        return await _check(ctx, payload, policy)

    http_check.__annotations__ = {
        "ctx": "TaskContext",
        "payload": payload_model(policy),
        "return": HttpCheckResult,
    }
    return http_check


async def _check(ctx: TaskContext, payload: Any, policy: HttpCheckPolicy) -> HttpCheckResult:
    import httpx

    started = trio.current_time()
    status: int | None = None
    error: str | None = None
    timeout = payload.timeout
    try:
        transport = _vetted_transport(policy)
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            with trio.fail_after(timeout):
                request = client.build_request(payload.method, payload.url, headers=payload.headers)
                response = await client.send(request, stream=True)  # the body is not read
                await response.aclose()
        status = response.status_code
    except (httpx.TimeoutException, trio.TooSlowError):
        error = f"no answer within {timeout:g}s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = round((trio.current_time() - started) * 1000, 3)
    ok = status == payload.expected_status
    if status is not None and not ok:
        error = f"expected status {payload.expected_status}, got {status}"
    ctx.log.info("http check", name=payload.name, status_code=status, latency_ms=latency_ms, ok=ok)
    return {
        "name": payload.name,
        "status_code": status,
        "latency_ms": latency_ms,
        "ok": ok,
        "error": error,
    }


def _vetted_backend(policy: HttpCheckPolicy) -> httpcore.AsyncNetworkBackend:
    import httpcore

    class VettedBackend(httpcore.AsyncNetworkBackend):
        """Resolves the host itself, checks every address it has, and connects to a
        checked address: TLS and the Host header still use the name from the URL."""

        def __init__(self) -> None:
            self._inner = httpcore.TrioBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            addresses = await _resolve(host, port)
            for address in addresses:
                policy.check_address(host, address)
            last: Exception | None = None
            for address in addresses:
                try:
                    return await self._inner.connect_tcp(
                        str(address), port, timeout, local_address, socket_options
                    )
                except httpcore.ConnectError as exc:
                    last = exc
            raise last or httpcore.ConnectError(f"no address for {host}")

        async def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - never configured
            raise httpcore.ConnectError("http_check does not use unix sockets")

        async def sleep(self, seconds: float) -> None:
            await trio.sleep(seconds)

    return VettedBackend()


async def _resolve(host: str, port: int) -> list[IPAddress]:
    import socket

    import httpcore

    try:
        return [ipaddress.ip_address(_normal_host(host))]
    except ValueError:
        pass
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


def _vetted_transport(policy: HttpCheckPolicy) -> Any:
    """An httpx transport whose connections go through the vetted backend.

    httpx does not take a network backend, so the pool it builds is replaced by one that
    uses ours (the same settings: no proxy, the default TLS context)."""
    import httpcore
    import httpx

    context = _ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(  # see the docstring
        ssl_context=context, network_backend=_vetted_backend(policy)
    )
    return transport


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certificates verified), made once: loading the CA
    bundle takes longer than checking a local target."""
    import httpx

    return httpx.create_ssl_context(trust_env=False)
