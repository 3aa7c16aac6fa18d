"""A small synchronous client of the HTTP API, used by the ``trellis`` client commands.

Every failure becomes a :class:`ClientError` carrying the command's exit status:

* ``2`` — the server refused the request as invalid (400, 404, 413, 422): fix the input;
* ``3`` — the server could not be reached, timed out, or is unavailable (502, 503, 504);
* ``4`` — the token is missing or wrong (401, 403);
* ``1`` — anything else (409 conflict, other server errors).
"""

from __future__ import annotations

from typing import Any

import httpx

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4

DEFAULT_URL = "http://127.0.0.1:8080"


class ClientError(Exception):
    """A request that did not succeed; ``exit_code`` is what the command exits with."""

    def __init__(self, message: str, exit_code: int, *, status: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status


class ApiClient:
    """``GET``/``POST``/``DELETE`` against a Trellis server, answering decoded JSON (``None``
    for a ``204 No Content``)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Accept": "application/json", "User-Agent": "trellis-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        try:
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ClientError(f"bad server URL {url!r}: {exc}", EXIT_USAGE) from None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        query = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.UnsupportedProtocol as exc:
            raise ClientError(f"bad server URL {self.url!r}: {exc}", EXIT_USAGE) from None
        except httpx.TimeoutException:
            raise ClientError(
                f"the Trellis server at {self.url} did not answer in time", EXIT_UNREACHABLE
            ) from None
        except httpx.TransportError as exc:
            raise ClientError(
                f"cannot reach the Trellis server at {self.url} ({exc or type(exc).__name__}); "
                "is `trellis serve` running? Set --url or TRELLIS_URL",
                EXIT_UNREACHABLE,
            ) from None
        if response.status_code == 204:
            return None  # done, and nothing to say (DELETE /schedules/{id})
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success:
            if data is None:
                raise ClientError(
                    f"{self.url} answered {method} {path} with something other than JSON; "
                    "is it a Trellis server?",
                    EXIT_UNREACHABLE,
                )
            return data
        raise _refused(response.status_code, data, method, path)


def _refused(status: int, data: Any, method: str, path: str) -> ClientError:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message", "")) or f"HTTP {status}"
        if error.get("field"):
            message = f"{message} (field: {error['field']})"
    else:
        message = f"HTTP {status} for {method} {path}"
    if status in (401, 403):
        hint = "pass --token or set TRELLIS_API_TOKEN to the server's API token"
        return ClientError(f"not authorised: {message}; {hint}", EXIT_AUTH, status=status)
    if status in (502, 503, 504):
        return ClientError(f"server unavailable: {message}", EXIT_UNREACHABLE, status=status)
    if status in (400, 404, 405, 413, 422):
        return ClientError(message, EXIT_USAGE, status=status)
    return ClientError(message, EXIT_FAILED, status=status)
