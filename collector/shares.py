"""How one level's load is split across the client processes (and hosts) of a sharded run: which warm-up and
measured requests each sends, with how many workers, under which worker numbers.

Pure arithmetic, the same on every host, so collectors that never talk to each other still deal the same
level the same way: a closed loop's `concurrency` workers are dealt in contiguous blocks as evenly as possible
(4 over 2: 2 + 2; 5 over 2: 3 + 2), and each measured request goes to the share owning its worker slot
((sequence - warm-up) mod concurrency), so a share's request count is proportional to its workers; an open
loop's schedule is dealt round-robin (share k sends positions k, k + n, ...; all at the shared schedule's
times), its cap on requests in flight split like a closed loop's workers. Warm-up requests are dealt
round-robin too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


def even_split(total: int, parts: int, index: int) -> tuple[int, int]:
    """(first, size) of part `index` when `total` items are dealt in `parts` contiguous blocks as evenly as
    possible, the first blocks taking the remainder."""
    base, extra = divmod(total, parts)
    return index * base + min(index, extra), base + (1 if index < extra else 0)


@dataclass(frozen=True)
class SlotSequences:
    """The measured sequences of a closed loop whose worker slot ((sequence - start) mod slots) lies in
    [first_slot, first_slot + width): lazily, since a level may have millions."""

    start: int
    count: int
    slots: int
    first_slot: int
    width: int

    def __iter__(self) -> Iterator[int]:
        end = self.start + self.count
        for base in range(self.start, end, self.slots):
            for slot in range(self.first_slot, self.first_slot + self.width):
                if base + slot >= end:
                    return
                yield base + slot

    def __len__(self) -> int:
        rounds, rest = divmod(self.count, self.slots)
        return rounds * self.width + max(0, min(self.width, rest - self.first_slot))


@dataclass(frozen=True)
class Share:
    """The part of a level one client process sends: share `index` of `count`."""

    index: int
    count: int
    worker_offset: int  # the global worker_index of its first worker (a closed loop's)
    workers: int  # closed loop: workers kept busy; open loop: its cap on requests in flight
    warmup: range  # sequence numbers of its warm-up requests
    measured: SlotSequences | range  # closed loop: sequence numbers; open loop: positions in the schedule

    @property
    def is_whole(self) -> bool:
        return self.count == 1


def share_of(
    concurrency: int, warmup: int, requests: int, schedule_length: int | None, index: int, count: int
) -> Share:
    """Share `index` of `count` of a level (`schedule_length` sends for an open loop, None for a closed one).

    Needs count <= concurrency (the config checks it): every share gets at least one worker.
    """
    if not 0 <= index < count <= concurrency:
        raise ValueError(f"share {index} of {count} of a level with concurrency {concurrency}")
    first, width = even_split(concurrency, count, index)
    warm = range(index, warmup, count)
    if schedule_length is None:
        measured: SlotSequences | range = (
            range(warmup, warmup + requests)
            if count == 1
            else SlotSequences(warmup, requests, concurrency, first, width)
        )
    else:
        measured = range(index, schedule_length, count)
    return Share(index, count, first, width, warm, measured)


def shares_size(concurrency: int, warmup: int, requests: int, is_open_loop: bool, indices: range, count: int) -> int:
    """Requests (warm-up included) that shares `indices` of `count` send of a level (an open loop's schedule taken
    as `requests` long): what one host of a sharded run shows as its level's size."""
    schedule = requests if is_open_loop else None
    shares = (share_of(concurrency, warmup, requests, schedule, i, count) for i in indices)
    return sum(len(s.warmup) + len(s.measured) for s in shares)
