"""The provisioning log's storage on both backends: appends of concurrent writers never interleave a
line, reads go by day, and old days are pruned."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from sync_core.state.base import StateBackend
from sync_core.state.blob import BlobStateBackend
from sync_core.state.documents import LOG_APPEND_BYTES, log_chunks
from sync_core.state.local import LocalStateBackend

TODAY = date(2026, 3, 1)


@pytest.fixture(params=["local", "blob"])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], StateBackend]:
    """A maker of backends on one store, each with its own client, like separate processes."""
    if request.param == "local":
        return lambda: LocalStateBackend(tmp_path)
    make_blob_backend: Callable[..., BlobStateBackend] = request.getfixturevalue("make_blob_backend")
    return make_blob_backend


def lines_of(writer: int, count: int) -> list[bytes]:
    # ~2 KB a line: a writer's 300 lines are one append of 600 KB
    return [json.dumps({"writer": writer, "n": n, "pad": "x" * 2000}).encode() + b"\n" for n in range(count)]


def test_concurrent_appends_never_interleave_a_line(backends) -> None:
    writers, count = 8, 300

    async def scenario() -> list[bytes]:
        stores = [backends() for _ in range(writers)]
        await asyncio.gather(*(s.append_log(TODAY, lines_of(w, count)) for w, s in enumerate(stores)))
        return await stores[0].read_log(TODAY)

    (day,) = asyncio.run(scenario())
    rows = [json.loads(line) for line in day.splitlines()]  # every line whole
    assert len(rows) == writers * count
    # each writer's append arrived whole and in order, not mixed with another's
    runs = [rows[i:i + count] for i in range(0, len(rows), count)]
    assert sorted(run[0]["writer"] for run in runs) == list(range(writers))
    assert all([r["n"] for r in run] == list(range(count)) and len({r["writer"] for r in run}) == 1
               for run in runs)


def test_reads_go_by_day_and_old_days_are_pruned(backends) -> None:
    days = [TODAY - timedelta(days=n) for n in (40, 31, 30, 1, 0)]

    async def scenario() -> tuple[list[bytes], int, list[bytes], int]:
        store = backends()
        for day in days:
            await store.append_log(day, [f'{{"day": "{day}"}}\n'.encode()])
        await store.append_log(TODAY, [b'{"day": "again"}\n'])
        recent = await store.read_log(TODAY - timedelta(days=1))
        pruned = await store.prune_log(TODAY - timedelta(days=30))
        return recent, pruned, await store.read_log(date.min), await store.prune_log(TODAY - timedelta(days=30))

    recent, pruned, kept, again = asyncio.run(scenario())
    assert recent == [b'{"day": "2026-02-28"}\n', b'{"day": "2026-03-01"}\n{"day": "again"}\n']
    assert pruned == 2 and again == 0
    assert [json.loads(d.splitlines()[0])["day"] for d in kept] == [str(d) for d in days[2:]]


def test_an_empty_store_has_no_log(backends) -> None:
    async def scenario() -> tuple[list[bytes], int]:
        store = backends()
        return await store.read_log(date.min), await store.prune_log(TODAY)

    assert asyncio.run(scenario()) == ([], 0)


def test_appends_are_whole_lines_of_at_most_4_mib() -> None:
    lines = [b"x" * 999 + b"\n"] * 10_000  # 10 MB
    chunks = log_chunks(lines)
    assert [len(c) for c in chunks] == [4_194_000, 4_194_000, 1_612_000]
    assert b"".join(chunks) == b"".join(lines) and all(c.endswith(b"\n") for c in chunks)
    assert log_chunks([b"y" * (LOG_APPEND_BYTES + 1) + b"\n"]) == [b"y" * (LOG_APPEND_BYTES + 1) + b"\n"]
