"""Evictions as the seed delivers them, for each DelayedEviction mode, threads or not."""

from __future__ import annotations

import logging
import threading

import pytest

from impl import MemoryAccounting, MemoryFile
from spec.vocabulary import (
    PAGE_SIZE,
    DelayedEviction,
    EvictableRange,
    MemoryFileOpts,
    MemoryKind,
)

ER = EvictableRange


class User:
    """Records evictions; optionally blocks in evict until released."""

    def __init__(self, name: str, *, block: bool = False) -> None:
        self.name = name
        self.evicted: list[EvictableRange] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not block:
            self.release.set()

    def evict(self, er: EvictableRange) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.evicted.append(er)

    def __str__(self) -> str:
        return self.name


def opts(mode: DelayedEviction, memcg: bool = False) -> MemoryFileOpts:
    return MemoryFileOpts(delayed_eviction=mode, use_host_memcg_pressure=memcg)


@pytest.fixture(params=[False, True], ids=["manual", "thread"])
def background(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def make(options: MemoryFileOpts, background: bool) -> MemoryFile:
    # With threads and memcg pressure, registration is skipped only for the manual mode;
    # a file with threads registers for the current cgroup for real (cgroup v1 here).
    return MemoryFile(options, background=background, accounting=MemoryAccounting())


def settle(f: MemoryFile) -> None:
    """Let background work finish (threads) or run it (manual)."""
    f.reclaim()
    f.wait_for_evictions()


def mark_three(f: MemoryFile, user: User) -> None:
    for start in (0, 40, 20):  # not adjacent: three ranges
        f.mark_evictable(user, ER(start, start + 10))


LAST_FIRST = [ER(40, 50), ER(20, 30), ER(0, 10)]


def test_disabled_evicts_as_soon_as_marked(background: bool) -> None:
    with make(opts(DelayedEviction.DISABLED), background) as f:
        user = User("u")
        f.mark_evictable(user, ER(0, 10))
        f.wait_for_evictions()
        assert user.evicted == [ER(0, 10)]
        assert f.observation().evictable == ()  # the entry went with its last range


def test_enabled_without_memcg_evicts_when_the_reclaimer_runs_dry(background: bool) -> None:
    with make(opts(DelayedEviction.ENABLED), background) as f:
        user = User("u")
        fr = f.allocate(PAGE_SIZE, MemoryKind.ANONYMOUS)
        if not background:
            f.reclaim()  # the reclaimer goes idle (evicting nothing: nothing is marked)
            mark_three(f, user)
            assert f.run_evictions() == []  # marking only woke the reclaimer
            f.dec_ref(fr)
            assert f.reclaim() == [fr]  # it reclaims first, then starts evictions
            assert f.observation().evictable == (("u", tuple(sorted(LAST_FIRST)), True),)
        else:
            mark_three(f, user)
        settle(f)
        assert user.evicted == LAST_FIRST


def test_enabled_with_memcg_evicts_only_under_pressure(background: bool) -> None:
    with make(opts(DelayedEviction.ENABLED, memcg=True), background) as f:
        user = User("u")
        mark_three(f, user)
        settle(f)
        assert user.evicted == []
        assert f.should_cache_evictable()
        assert f.memcg_pressure() is True
        settle(f)
        assert user.evicted == LAST_FIRST
        assert f.memcg_pressure() is False  # nobody left to evict


def test_manual_evicts_only_when_asked(background: bool) -> None:
    with make(opts(DelayedEviction.MANUAL), background) as f:
        user = User("u")
        mark_three(f, user)
        assert f.memcg_pressure() is False
        settle(f)
        assert user.evicted == []
        f.start_evictions()
        settle(f)
        assert user.evicted == LAST_FIRST


def test_manual_run_evictions_goes_user_by_user_in_registration_order() -> None:
    with make(opts(DelayedEviction.MANUAL), False) as f:
        b, a = User("b"), User("a")
        f.mark_evictable(b, ER(0, 1))
        f.mark_evictable(a, ER(5, 6))
        f.mark_evictable(b, ER(3, 4))
        f.start_evictions()
        delivered = f.run_evictions()
        assert delivered == [(b, ER(3, 4)), (b, ER(0, 1)), (a, ER(5, 6))]


def test_mark_unevictable_and_all_unevictable_withdraw_ranges(background: bool) -> None:
    with make(opts(DelayedEviction.MANUAL), background) as f:
        user, other = User("u"), User("o")
        mark_three(f, user)
        f.mark_evictable(other, ER(0, 100))
        f.mark_unevictable(user, ER(5, 25))  # cuts [0,10) to [0,5) and [20,30) to [25,30)
        f.mark_all_unevictable(other)
        assert [label for label, _, _ in f.observation().evictable] == ["u"]
        f.start_evictions()
        settle(f)
        assert user.evicted == [ER(40, 50), ER(25, 30), ER(0, 5)]
        assert other.evicted == []


def test_evict_racing_with_mark_unevictable_on_a_thread() -> None:
    """The range taken is delivered even if marked unevictable meanwhile; the rest is not."""
    with make(opts(DelayedEviction.MANUAL), True) as f:
        user = User("u", block=True)
        mark_three(f, user)
        f.start_evictions()
        assert user.entered.wait(10)  # the evictor took [40, 50) and is inside evict
        f.mark_unevictable(user, ER(0, 50))  # everything, the in-flight range included
        assert f.observation().evictable == (("u", (), True),)  # kept: its evictor runs
        user.release.set()
        f.wait_for_evictions()
        assert user.evicted == [ER(40, 50)]
        assert f.observation().evictable == ()


def test_evict_racing_with_mark_unevictable_without_threads() -> None:
    with make(opts(DelayedEviction.MANUAL), False) as f:

        class Withdrawing(User):
            def evict(self, er: EvictableRange) -> None:
                super().evict(er)
                f.mark_unevictable(self, ER(0, 30))  # called back without the lock held

        user = Withdrawing("u")
        mark_three(f, user)
        f.start_evictions()
        assert f.run_evictions() == [(user, ER(40, 50))]
        assert user.evicted == [ER(40, 50)]


def test_marking_again_while_evicting_is_picked_up_by_the_same_evictor() -> None:
    with make(opts(DelayedEviction.MANUAL), True) as f:
        user = User("u", block=True)
        f.mark_evictable(user, ER(0, 10))
        f.start_evictions()
        assert user.entered.wait(10)
        f.mark_evictable(user, ER(100, 110))
        f.start_evictions()  # no second evictor for the same user
        user.release.set()
        f.wait_for_evictions()
        assert user.evicted == [ER(0, 10), ER(100, 110)]
        assert len([t for t in threading.enumerate() if t.name == "pgalloc-evict"]) == 0


def test_an_evict_that_raises_is_logged_and_the_evictor_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(User):
        def evict(self, er: EvictableRange) -> None:
            super().evict(er)
            raise RuntimeError("cannot evict")

    with make(opts(DelayedEviction.MANUAL), True) as f, caplog.at_level(logging.ERROR, "impl"):
        user = Failing("u")
        mark_three(f, user)
        f.start_evictions()
        f.wait_for_evictions()
        assert user.evicted == LAST_FIRST
        assert sum("evicting" in r.getMessage() for r in caplog.records) == 3
