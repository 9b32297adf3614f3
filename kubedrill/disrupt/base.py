"""The one disruption protocol: inject, verify that it took effect, heal -- side by side, always healed.

    with DrainNode(cluster, node).applied(recorder) as d:
        ...  # load keeps running
    d.window  # when it was applied, on the record's clock
    d.effect  # the disruption's own evidence that it took effect (pods evicted, member paused, ...)

`applied()`:
  1. refuses to start where the disruption cannot run (`available()`), or when the system is not
     healthy before it (`healthy()`): the drill would measure an already broken system;
  2. records `disruption-start`, runs `inject()`, records `disruption-injected`;
  3. runs `verify()`: a disruption that shows no effect (a drain that evicted nothing, a freeze the
     kernel refused) makes every verdict after it meaningless;
  4. yields, then always runs `heal()` -- also on an exception and on Ctrl-C -- and records
     `disruption-end`; checks health again after the heal.

The failures of steps 1 and 3 are `Inconclusive`: the pytest plugin reports such a test as UNKNOWN
(not a FAIL of the workload, and never a PASS), with the reason. A failure to heal or an unhealthy
system after the heal is a `DisruptionError`: a real problem the run must show.

Every disruption registers under a name (`@register("drain")`); suites and the run config name
disruptions from the registry (`lookup(name)`), so an unknown name is one clear error listing the
known ones.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any, Callable, Iterator, TypeVar

from kubedrill.cluster.progress import say
from kubedrill.record import Recorder, Window


class DisruptionError(RuntimeError):
    """The disruption could not be applied or healed; the message says which phase."""


class Inconclusive(DisruptionError):
    """The drill cannot judge the workload: reported as UNKNOWN with this reason, never as PASS."""


class NotAvailable(Inconclusive):
    """The disruption cannot run on this cluster (e.g. it needs node access)."""


class UnhealthyBefore(Inconclusive):
    """The system was not healthy before the disruption: nothing it showed would be the disruption's doing."""


class NotEffective(Inconclusive):
    """The disruption ran but shows no effect: there is nothing to judge."""


class Disruption(abc.ABC):
    name: str = "disruption"  # the registry name; an instance may refine it (e.g. "upgrade-node/w1")

    def __init__(self) -> None:
        self.window: Window | None = None
        self.effect: dict[str, Any] = {}
        self.inject_s: float | None = None
        self.heal_s: float | None = None

    def describe(self) -> str:
        """What this disruption acts on, for reports (e.g. "drain of kubedrill-1-worker")."""
        target = next((str(getattr(self, a)) for a in ("node", "pod", "workload", "nodes") if getattr(self, a, None)),
                      "")
        return f"{self.name} of {target}" if target else self.name

    def available(self) -> str | None:
        """None if this disruption can run here, else the reason it cannot."""
        return None

    def healthy(self) -> tuple[bool, str]:
        """Health of the system around the disruption; default: no check."""
        return True, "no health check"

    @abc.abstractmethod
    def inject(self) -> None: ...

    def verify(self) -> tuple[bool, str]:
        """(took effect, the evidence seen). Called right after inject(); default: trust inject()."""
        return True, "not verified beyond inject()"

    @abc.abstractmethod
    def heal(self) -> None: ...

    @contextlib.contextmanager
    def applied(self, recorder: Recorder | None = None, check_health: bool = True) -> Iterator["Disruption"]:
        rec = recorder or Recorder(self.name)
        why = self.available()
        if why:
            raise NotAvailable(f"{self.name}: not available here: {why}")
        if check_health:
            ok, seen = self.healthy()
            if not ok:
                raise UnhealthyBefore(f"{self.name}: system unhealthy before injection: {seen}")
        start = rec.now()
        rec.event("disruption-start", self.name)
        healed = False
        phase = "inject"
        interrupted = False
        try:
            self.inject()
            self.inject_s = rec.now() - start
            rec.event("disruption-injected", self.name,
                      **{k: str(v) for k, v in self.effect.items() if k not in ("at", "kind", "detail")})
            phase = "verify"
            took, evidence = self.verify()
            self.effect.setdefault("verified", evidence)
            if not took:
                raise NotEffective(f"{self.name}: did not take effect: {evidence}")
            phase = "applied"
            say(f"disruption applied: {self.describe()} ({str(evidence)[:160]})")
            yield self
            phase = "heal"
            h0 = rec.now()
            self.heal()
            healed = True
            self.heal_s = rec.now() - h0
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into one by the plugin
            interrupted = True
            say(f"interrupted during {phase} of {self.describe()}: healing it before exit")
            raise
        finally:
            if not healed:
                try:
                    self.heal()
                    healed = True
                except Exception:  # noqa: BLE001 - reported below; the original error propagates
                    pass
            end = rec.now()
            self.window = Window(start, end)
            rec.event("disruption-end", self.name, healed=healed)
            if interrupted:
                INTERRUPTED.append(f"{self.describe()}: interrupted during {phase} after {end - start:.1f} s; "
                                   + ("healed" if healed else "the heal FAILED: check the cluster by hand"))
        if check_health:
            ok, seen = self.healthy()
            if not ok:
                raise DisruptionError(f"{self.name}: system unhealthy after heal: {seen}")


INTERRUPTED: list[str] = []  # "drain of w1: interrupted while applied; healed" -- read by the report


D = TypeVar("D", bound=type[Disruption])
REGISTRY: dict[str, type[Disruption]] = {}


def register(name: str) -> Callable[[D], D]:
    """Class decorator: the disruption is known under `name` (also its `name` attribute)."""
    def deco(cls: D) -> D:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"disruption name {name!r} is taken by {REGISTRY[name].__qualname__}")
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return deco


def lookup(name: str) -> type[Disruption]:
    """The disruption registered as `name`; an unknown name names the known ones."""
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no disruption named {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def _load_all() -> None:
    """Import every module of this package, so each disruption has registered (a new module needs
    no entry anywhere else)."""
    import importlib
    import pkgutil

    import kubedrill.disrupt as package

    for mod in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{mod.name}")
