"""Every error Trellis raises derives from :class:`TrellisError`.

Messages state the rule that was broken and, where there is one, the next step.
"""

from __future__ import annotations


class TrellisError(Exception):
    """Base class of every error raised by Trellis."""


class ActorError(TrellisError):
    """Something went wrong talking to or running an actor."""


class ActorStopped(ActorError):
    """The actor's mailbox is closed: it was removed or its runtime shut down."""


class MailboxFull(ActorError):
    """``tell_nowait`` found the mailbox at capacity; use ``await tell`` to wait for room."""


class AskTimeout(ActorError, TimeoutError):
    """An ``ask`` got no reply within its timeout."""


class ActorCrashed(ActorError):
    """The actor raised while handling a request; the original error is the ``__cause__``."""


class StoreUnavailable(ActorCrashed):
    """The store cannot be reached or written now (database down, disk full, connection
    lost): nothing was done; retry later. The driver's error is the ``__cause__``.

    It is an :class:`ActorCrashed` so that callers which already retry a failed store call
    later (the queue's claims) treat an outage the same way; unlike a crash, the store
    actor keeps running, and answers again by itself once the store is back.
    ``retry_after`` is a hint, in seconds, of when to try again.
    """

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ActorHung(ActorError):
    """The idle watchdog saw no liveness signal within the child's idle timeout."""


class SupervisorEscalation(ActorError):
    """A supervisor exceeded its restart intensity and gave up; its parent decides next."""

    def __init__(self, supervisor: str, child: str, last_error: BaseException | None) -> None:
        self.supervisor = supervisor
        self.child = child
        self.last_error = last_error
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} exceeded the restart "
            f"intensity; last error: {last_error!r}"
        )


class RuntimeNotRunning(TrellisError):
    """A runtime's facade was used before it started or after it stopped."""


class InvalidTransition(TrellisError):
    """A task lifecycle move that the transition table does not allow."""


class TaskNotFound(TrellisError, LookupError):
    """No task with that id exists in the store."""


class WaitTimeout(TrellisError, TimeoutError):
    """``Runtime.wait`` gave up before the task ended."""


class ScheduleNotFound(TrellisError, LookupError):
    """No schedule with that id exists in the store."""


class UnknownTaskType(TrellisError, LookupError):
    """A task was submitted for a type that is not registered."""


class ValidationError(TrellisError, ValueError):
    """Input that breaks a rule; ``field`` names the offending field when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class ConfigurationError(TrellisError):
    """The application or runtime was declared in a way that cannot work."""


class ClientError(TrellisError):
    """A request of a :mod:`trellis_actors.client` that the server refused or could not
    answer; ``status`` is the HTTP status when there was one, ``field`` the field the
    server named (a taken schedule name, say)."""

    def __init__(
        self, message: str, *, status: int | None = None, field: str | None = None
    ) -> None:
        self.status = status
        self.field = field
        super().__init__(message)


class Unauthorized(ClientError):
    """The server wants a valid API token (HTTP 401 or 403)."""


class Unavailable(ClientError):
    """The server cannot be reached now, or answered that it is unavailable (HTTP 502,
    503, 504): nothing was done; retry later."""


class Conflict(ClientError):
    """The request is valid but the task or schedule is not in a state that allows it
    (HTTP 409), such as cancelling a finished task."""
