"""What a desired-state backend offers: a compare-and-set write, change notices, and replica reports."""

from __future__ import annotations

import abc
from typing import ClassVar

from serving.errors import Conflict, Unavailable
from serving.fleet.desired import DesiredState


class StaleState(Conflict):
    """A write based on an older generation than the stored one: nothing was written."""

    def __init__(self, based_on: int, current: int):
        super().__init__(f"the desired state changed: this change was based on generation {based_on}, the current one is {current}; read it again and retry")
        self.current = current
        self.headers["X-State-Generation"] = str(current)


class BackendUnreachable(Unavailable):
    """The backend did not answer: replicas serve what they applied last; admin calls wait for it."""

    def __init__(self, backend: StateBackend, cause: BaseException):
        super().__init__(f"the state backend ({backend.describe()}) is unreachable: {type(cause).__name__}: {cause}; serving goes on as last applied", retry_after=5)


class StateBackend(abc.ABC):
    """One fleet's desired state and its replicas' reports. Every call may raise BackendUnreachable."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the state lives, for messages (no secrets)."""

    @abc.abstractmethod
    async def read(self) -> DesiredState | None:
        """The desired state, or None when nothing was ever written."""

    @abc.abstractmethod
    async def write(self, state: DesiredState, based_on: int) -> int:
        """Store ``state`` as the next generation if the stored one is still ``based_on`` (0: none stored),
        and notify the followers; returns the new generation. Else StaleState."""

    @abc.abstractmethod
    async def wait_change(self, timeout: float) -> None:
        """Return when the state may have changed, or after ``timeout`` seconds."""

    @abc.abstractmethod
    async def put_report(self, replica: str, report: dict, ttl: float) -> None:
        """What ``replica`` serves now; it expires after ``ttl`` seconds without a newer one."""

    @abc.abstractmethod
    async def reports(self) -> dict[str, dict]:
        """Every replica's unexpired report, by name."""

    shares_feedback: ClassVar[bool] = False  # whether feedback sent to one replica reaches the others

    async def put_feedback(self, origin: str, model: str, items: list[dict]) -> None:  # noqa: B027 (optional)
        """Send feedback one replica took to every other one (a backend of one replica has nothing to do)."""

    async def feedback_since(self, cursor: str | None) -> tuple[str | None, list[dict]]:
        """Feedback sent after ``cursor`` (None: from now on): (the new cursor, [{"origin", "model", "items"}])."""
        return cursor, []

    async def close(self) -> None:  # noqa: B027 (optional)
        """Release connections."""
