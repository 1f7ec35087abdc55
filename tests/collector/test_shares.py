"""How a level's load is dealt across client processes and hosts (collector/shares.py): every request of the
level sent by exactly one share, workers and slots split as evenly as possible, worker numbers the whole level's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collector.shares import even_split, share_of, shares_size


def test_concurrency_4_over_2_processes_is_2_plus_2_with_the_whole_levels_worker_numbers() -> None:
    first, second = (share_of(4, 2, 10, None, k, 2) for k in (0, 1))
    assert (first.worker_offset, first.workers, second.worker_offset, second.workers) == (0, 2, 2, 2)
    # Measured requests by worker slot ((sequence - warm-up) mod 4): slots 0-1 to the first, 2-3 to the second.
    assert list(first.measured) == [2, 3, 6, 7, 10, 11]
    assert list(second.measured) == [4, 5, 8, 9]
    assert (len(first.measured), len(second.measured)) == (6, 4)
    # Warm-up requests dealt round-robin, so each process warms its own connections.
    assert (list(first.warmup), list(second.warmup)) == ([0], [1])


def test_an_uneven_concurrency_gives_the_remainder_to_the_first_processes() -> None:
    assert [even_split(5, 2, k) for k in range(2)] == [(0, 3), (3, 2)]
    assert [even_split(7, 3, k) for k in range(3)] == [(0, 3), (3, 2), (5, 2)]
    shares = [share_of(5, 0, 10, None, k, 2) for k in range(2)]
    # 10 requests over slots 0-2 and 3-4: 6 and 4, in proportion to the workers.
    assert [len(s.measured) for s in shares] == [6, 4]


def test_an_open_loop_schedule_is_dealt_round_robin_with_the_cap_split() -> None:
    shares = [share_of(5, 1, 7, 7, k, 3) for k in range(3)]
    assert [list(s.measured) for s in shares] == [[0, 3, 6], [1, 4], [2, 5]]
    assert [s.workers for s in shares] == [2, 2, 1]  # max_in_flight 5 over 3 processes


def test_one_share_is_the_whole_level_as_before() -> None:
    whole = share_of(4, 3, 10, None, 0, 1)
    assert (whole.worker_offset, whole.workers, whole.warmup, whole.measured) == (0, 4, range(3), range(3, 13))


@given(
    concurrency=st.integers(1, 40),
    warmup=st.integers(0, 12),
    requests=st.integers(1, 200),
    count=st.integers(1, 40),
    open_loop=st.booleans(),
)
def test_every_request_of_a_level_is_sent_by_exactly_one_share(
    concurrency: int, warmup: int, requests: int, count: int, open_loop: bool
) -> None:
    count = min(count, concurrency)
    schedule = requests if open_loop else None
    shares = [share_of(concurrency, warmup, requests, schedule, k, count) for k in range(count)]
    warm = sorted(seq for s in shares for seq in s.warmup)
    measured = sorted(seq for s in shares for seq in s.measured)
    assert warm == list(range(warmup))
    assert measured == (list(range(requests)) if open_loop else list(range(warmup, warmup + requests)))
    assert all(len(s.measured) == len(list(s.measured)) for s in shares)
    # Workers (or slots) as even as can be, none without one, and the worker numbers tile the level's.
    assert sum(s.workers for s in shares) == concurrency
    assert max(s.workers for s in shares) - min(s.workers for s in shares) <= 1
    assert [s.worker_offset for s in shares] == [sum(t.workers for t in shares[:k]) for k in range(count)]
    assert shares_size(concurrency, warmup, requests, open_loop, range(count), count) == warmup + requests
