"""A disruption is an object with inject and heal side by side, and health checks around them.

    with DrainNode(cluster, node).applied(recorder) as d:
        ...  # load keeps running
    d.window  # when it was applied, on the record's clock

`applied()` checks health first (a broken system makes the test inconclusive, not failed),
records `disruption-start` / `disruption-end` events, and always heals, even on Ctrl-C.
`effect` holds the disruption's own evidence that it took effect (e.g. pods evicted); suites must
check it before judging anything else.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any, Iterator

from kubedrill.record import Recorder, Window


class DisruptionError(RuntimeError):
    """The disruption could not be applied or healed; the message says which phase."""


class Disruption(abc.ABC):
    name: str = "disruption"

    def __init__(self) -> None:
        self.window: Window | None = None
        self.effect: dict[str, Any] = {}
        self.inject_s: float | None = None
        self.heal_s: float | None = None

    def available(self) -> str | None:
        """None if this disruption can run here, else the reason it cannot."""
        return None

    def healthy(self) -> tuple[bool, str]:
        """Health of the system around the disruption; default: no check."""
        return True, "no health check"

    @abc.abstractmethod
    def inject(self) -> None: ...

    @abc.abstractmethod
    def heal(self) -> None: ...

    @contextlib.contextmanager
    def applied(self, recorder: Recorder | None = None, check_health: bool = True) -> Iterator["Disruption"]:
        rec = recorder or Recorder(self.name)
        why = self.available()
        if why:
            raise DisruptionError(f"{self.name}: not available here: {why}")
        if check_health:
            ok, seen = self.healthy()
            if not ok:
                raise DisruptionError(f"{self.name}: system unhealthy before injection: {seen}")
        start = rec.now()
        rec.event("disruption-start", self.name)
        healed = False
        try:
            self.inject()
            self.inject_s = rec.now() - start
            rec.event("disruption-injected", self.name, **{k: str(v) for k, v in self.effect.items()})
            yield self
            h0 = rec.now()
            self.heal()
            healed = True
            self.heal_s = rec.now() - h0
        finally:
            if not healed:
                with contextlib.suppress(Exception):
                    self.heal()
            end = rec.now()
            self.window = Window(start, end)
            rec.event("disruption-end", self.name, healed=healed)
        if check_health:
            ok, seen = self.healthy()
            if not ok:
                raise DisruptionError(f"{self.name}: system unhealthy after heal: {seen}")
