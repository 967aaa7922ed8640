"""S3's clock as the notebook sees it: readings arrive late, never early."""

from __future__ import annotations

from sm_async_nb.aws.clock import READINGS_S, ServerClock


def test_a_late_answer_does_not_shift_the_offset():
    clock = ServerClock(clock=lambda: 0.0)
    clock.update(server_time=1000.0, local_time=1000.2)  # in step
    assert clock.offset() == 0.0
    clock.update(server_time=1001.0, local_time=1009.0)  # a download whose body took 8 s: dated at its start
    assert clock.offset() == 0.0 and clock.to_local(2000.0) == 2000.0


def test_a_clock_ahead_is_learned_and_its_correction_shows_at_once():
    clock = ServerClock(clock=lambda: 0.0, monotonic=lambda: 0.0)
    clock.update(server_time=1000.0, local_time=1000.5 + 3 * 3600)  # the notebook 3 h ahead
    assert clock.offset() == -3 * 3600
    clock.update(server_time=1000.0 + 3600, local_time=1000.5 + 3600 + 3 * 3600 + 30)  # 30 s late
    assert clock.offset() == -3 * 3600
    clock.update(server_time=5000.0, local_time=5000.5)  # NTP set it back: a larger reading wins at once
    assert clock.offset() == 0.0


def test_a_clock_set_forward_shows_once_the_older_readings_age_out():
    elapsed = [0.0]
    clock = ServerClock(clock=lambda: 0.0, monotonic=lambda: elapsed[0])
    clock.update(server_time=20000.0, local_time=20000.5 - 3600)  # the notebook 1 h behind (after a suspend)
    assert clock.offset() == 3600
    elapsed[0] = 60.0
    clock.update(server_time=20060.0, local_time=20060.5)  # NTP set it forward
    assert clock.offset() == 3600  # the older, larger reading still wins for READINGS_S seconds
    elapsed[0] = 60.0 + READINGS_S + 1
    clock.update(server_time=20400.0, local_time=20400.5)
    assert clock.offset() == 0.0


def test_behind_by_hours():
    clock = ServerClock(clock=lambda: 0.0)
    clock.update(server_time=20000.0, local_time=20000.5 - 3 * 3600)
    assert clock.offset() == 3 * 3600
