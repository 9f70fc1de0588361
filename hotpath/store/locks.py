"""Locks: the program's locks, semaphores, conditions and events, one entry per creation site.

Each site's acquisitions, waits and holds are in its *account* (``hotpath.recorder.locks``:
the compiled or the Python one for ``threading.Lock`` and ``RLock``, the Python one for the
rest), which the site reads whole. What only the live objects know (how many are alive, who
holds them now and since when, who waits) the lock collector tells through the probe it
attaches, asked once per ``read``; it also tells who a logged thread was, and what a logged
function is called. Views see ``LockReading``s, copies that share nothing with the table.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType
from typing import NamedTuple

from hotpath import stdlib
from hotpath.recorder.locks import Account, AccountReading, Who
from hotpath.store.capped import CappedTable, copies
from hotpath.store.histogram import Distribution, DistributionReading


class LiveLocks(NamedTuple):
    """What a site's objects that are still alive say now."""

    instances: int
    holders: list[tuple[Holder, int]]  # (thread or task, held since) of every hold now
    waiting: int  # threads or tasks waiting to acquire
    waiting_on: int  # threads or tasks in a Condition's or Event's wait()


NO_LOCKS = LiveLocks(0, [], 0, 0)


Holder = str | int  # a thread's or a task's name; the ident of a thread threading does not know


class LockEvent(NamedTuple):
    at_ns: int  # when the lock was got
    by: Holder  # the thread or task that held it
    wait_ns: int  # how long it waited for it (0: at once)
    hold_ns: int
    function: tuple[str, str] | None  # the function that took it: qualified name, location


class LockReading(NamedTuple):
    id: int
    name: str
    location: str
    kind: str
    created: int
    live: int
    acquisitions: int
    contended: int
    failed: int  # non-blocking tries that found it taken
    timeouts: int  # waits to acquire that gave up (asyncio: were cancelled)
    wait_ns: int  # time spent waiting to acquire, timed-out waits included
    wait: DistributionReading  # contended acquisitions' waits
    hold: DistributionReading
    waits: DistributionReading  # Condition and Event wait() calls
    wait_timeouts: int  # those that timed out (asyncio: were cancelled)
    holders: list[tuple[Holder, int]]
    waiting: int
    waiting_on: int
    first_ns: int


class LockSite:
    """All locks (or semaphores, conditions, events) created at one line of the program."""

    def __init__(self, site_id: int, name: str, location: str, kind: str, account: Account):
        self.id = site_id
        self.name = name
        self.location = location
        self.kind = kind
        self.account = account
        self.lock = stdlib.new_rlock()  # reentrant: see hotpath/store/__init__.py
        self.created = 0
        self.waits = Distribution()
        self.wait_timeouts = 0
        self.first_ns = stdlib.perf_counter_ns()

    def waited(self, wait_ns: int, got: bool) -> None:
        """A Condition's or Event's wait() returned (``got``: woken, not timed out)."""
        with self.lock:
            self.waits.add(wait_ns)
            if not got:
                self.wait_timeouts += 1


# How the collector names a logged holder (a thread, or a task's name) and the function that
# took the lock (qualified name, location): asked for afresh at each reading.
Names = Callable[[Who, CodeType | None], tuple[Holder, tuple[str, str] | None]]


class LockTable(CappedTable[tuple[str, int, bool], LockSite]):
    """Lock sites by creation site: (file, line, whether its account is the recorder's
    twin's). Thread locks and conditions record into the twin's account, the rest into a
    Python one: a line that creates both has an entry of each."""

    def __init__(self, max_sites: int = 1_000) -> None:
        super().__init__(max_sites)
        self._probe: Callable[[LockSite], LiveLocks] = lambda site: NO_LOCKS
        self._names: Callable[[], Names] = lambda: lambda who, code: (str(who), None)

    def attach(self, probe: Callable[[LockSite], LiveLocks], names: Callable[[], Names]) -> None:
        """The collector's reading of a site's live objects, and its names."""
        self._probe = probe
        self._names = names

    def site(
        self, file: str, line: int, twins: bool, new: Callable[[int], LockSite]
    ) -> LockSite | None:
        """The site of (file, line, twins), made with ``new(id)`` the first time."""
        return self.get((file, line, twins), new)

    def read(self) -> list[LockReading]:
        sites = self.all()
        # Asked before any site's lock is taken, as channels do (store/channels.py).
        live = {site.id: self._probe(site) for site in sites}
        accounts = {site.id: site.account.read() for site in sites}
        return copies(sites, lambda site: _reading(site, accounts[site.id], live[site.id]))

    def events(self, site_id: int) -> list[LockEvent]:
        """A site's logged holds, oldest first."""
        name = self._names()
        events = []
        for since, hold, wait, who, code in self.by_id(site_id).account.read().log:
            by, function = name(who, code)
            events.append(LockEvent(since, by, wait, hold, function))
        return events


def _reading(site: LockSite, account: AccountReading, live: LiveLocks) -> LockReading:
    return LockReading(
        id=site.id,
        name=site.name,
        location=site.location,
        kind=site.kind,
        created=site.created,
        live=live.instances,
        acquisitions=account.acquisitions,
        contended=account.contended,
        failed=account.failed,
        timeouts=account.timeouts,
        wait_ns=account.wait_ns,
        wait=account.wait,
        hold=account.hold,
        waits=site.waits.read(),
        wait_timeouts=site.wait_timeouts,
        holders=live.holders,
        waiting=live.waiting,
        waiting_on=live.waiting_on,
        first_ns=site.first_ns,
    )
