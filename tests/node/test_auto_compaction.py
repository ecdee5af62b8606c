"""Auto-compaction schedules (node/auto_compaction.py): etcd 3.4's periodic and
revision compactors, driven by a fake clock, and the retention etcd accepts."""
from __future__ import annotations

import pytest

from cluster.spec import MaintenanceSpec, compaction_retention
from node.auto_compaction import PeriodicSchedule, RevisionSchedule, schedule_for


def run(schedule: PeriodicSchedule | RevisionSchedule, until: float, step: float = 1.0,
        revisions_per_s: int = 10, leading: bool = True) -> list[tuple[float, int]]:
    """Drive `schedule` at one sweep per `step` with a revision growing steadily."""
    done = []
    t = 0.0
    while t <= until:
        target = schedule.due(t, 1 + int(t * revisions_per_s), leading)
        if target is not None:
            done.append((t, target))
        t += step
    return done


def test_periodic_first_compacts_after_one_retention_to_the_revision_of_one_retention_ago() -> None:
    done = run(PeriodicSchedule(100.0, 0.0), until=350)
    assert [t for t, _ in done] == [100, 200, 300]
    # etcd keeps retention/interval + 1 samples: the oldest is one retention ago at
    # the first compaction, one retention and one sample interval ago later on.
    assert [target for _, target in done] == [1, 1 + 90 * 10, 1 + 190 * 10]


def test_periodic_samples_every_tenth_of_the_retention_and_keeps_one_retention() -> None:
    schedule = PeriodicSchedule(50.0, 0.0)
    assert schedule.sample_interval == 5.0 and schedule.samples_kept == 11


def test_periodic_over_an_hour_compacts_hourly_keeping_the_whole_retention() -> None:
    schedule = PeriodicSchedule(10 * 3600.0, 0.0)  # etcd: compact every hour, sample every 6 min
    assert schedule.compact_interval == 3600 and schedule.sample_interval == 360
    done = run(schedule, until=12 * 3600, step=60, revisions_per_s=1)
    assert done[0][0] == 10 * 3600 and done[1][0] == 11 * 3600
    assert all(t - (target - 1) >= 3600 * 10 - 360 for t, target in done)


def test_a_follower_samples_but_never_compacts_and_compacts_at_once_when_it_leads() -> None:
    schedule = PeriodicSchedule(100.0, 0.0)
    assert run(schedule, until=250, leading=False) == []
    assert schedule.due(260.0, 2601, True) == 1 + 150 * 10  # the oldest sample kept (t=150)


def test_revision_mode_keeps_the_last_retention_revisions_and_skips_repeats() -> None:
    schedule = RevisionSchedule(1000, 0.0, interval_s=60)
    assert schedule.due(30, 5000, True) is None  # not yet a check
    assert schedule.due(60, 500, True) is None  # fewer than the retention
    assert schedule.due(120, 5000, True) == 4000
    assert schedule.due(180, 5000, True) is None  # nothing new
    assert schedule.due(240, 6000, False) is None  # a follower
    assert schedule.due(300, 7000, True) == 6000


@pytest.mark.parametrize(("mode", "text", "value"), [
    ("periodic", "1h", 3600), ("periodic", "5m", 300), ("periodic", "90s", 90), ("periodic", "1h30m", 5400),
    ("periodic", "2", 7200), ("periodic", "0", 0), ("revision", "1000", 1000), ("revision", "0", 0),
])
def test_retention_is_read_as_etcd_reads_it(mode: str, text: str, value: float) -> None:
    assert compaction_retention(mode, text) == value


@pytest.mark.parametrize(("mode", "text"), [("periodic", "5 minutes"), ("revision", "5m"), ("periodic", "")])
def test_a_bad_retention_is_refused(mode: str, text: str) -> None:
    with pytest.raises(ValueError):
        compaction_retention(mode, text)


def test_off_unless_a_mode_and_a_nonzero_retention() -> None:
    assert schedule_for(MaintenanceSpec(), 0.0) is None
    assert schedule_for(MaintenanceSpec("periodic", "0"), 0.0) is None
    assert isinstance(schedule_for(MaintenanceSpec("periodic", "5m"), 0.0), PeriodicSchedule)
    assert isinstance(schedule_for(MaintenanceSpec("revision", "100"), 0.0), RevisionSchedule)
