"""Hand-written fakes shared by the unit tests (fakes rather than stacks of @patch)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from fcaps.configuration.overrides import apply_overrides
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Event, EventType


@dataclass(frozen=True)
class FakeProblem:
    """What `ConfigSource.check` returns: something with a key and a message."""

    key: str
    message: str


class FakeConfigSource:
    """The SET path's view of the configuration, without files or a state directory.

    `current()` is the file config with the overrides merged by the real (pure)
    `apply_overrides`, so a sequence of SETs committed with `commit()` behaves like the
    daemon's. `check()` answers whatever the test put in `problems`, and remembers the
    candidates it was asked about.
    """

    def __init__(self, file_config: Config, problems: list[Any] | None = None) -> None:
        self.file_config = file_config
        self.problems: list[Any] = list(problems or [])
        self.checked: list[dict[str, Any]] = []
        self._overrides: dict[str, Any] = {}
        self._pending: dict[str, dict[int, dict[str, Any]]] = {}

    def current(self) -> Config:
        return apply_overrides(self.file_config, self._overrides)

    def overrides(self) -> dict[str, Any]:
        return self._overrides

    def pending(self) -> dict[str, dict[int, dict[str, Any]]]:
        return self._pending

    def check(self, overrides: dict[str, Any]) -> list[Any]:
        self.checked.append(copy.deepcopy(overrides))
        return list(self.problems)

    def file_indexes(self, kind: str) -> set[int]:
        rows = self.file_config.services if kind == "services" else self.file_config.aliases
        return {row.index for row in rows}

    def commit(self, plan: SetPlan) -> None:
        """What the real store does after persisting: the plan becomes the new truth."""
        self._overrides = plan.overrides
        self._pending = plan.pending


class EventRecorder:
    """An event-bus subscriber that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def types(self) -> list[EventType]:
        return [e.type for e in self.events]
