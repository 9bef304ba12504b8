"""The tables every resource shares, the one lock, and the write bookkeeping (transactions,
timestamps, physical row order, listing cache); plus the listing helpers all resources use.

Every public method of the state takes the one lock, so a request sees and leaves a consistent
state, like the real proxy's per-team advisory lock and its member_add transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from emulators.litellm.state.clock import db_now, fmt_time, parse_time

if TYPE_CHECKING:
    from emulators.litellm.state.teams import TeamQuery
    from emulators.litellm.state.users import UserQuery

MASTER_USER_ID = "default_user_id"  # the identity LiteLLM gives the master key


class StateBase:
    """The tables, as LiteLLM's database would hold them, and how a write is recorded."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.licensed = False  # a LiteLLM licence: team admins are a premium feature
        self.teams: dict[str, dict[str, Any]] = {}  # team_id -> team object as /team/new shows it
        self.users: dict[str, dict[str, Any]] = {}  # user_id -> user row as /user/list shows it
        self.memberships: dict[tuple[str, str], dict[str, Any]] = {}  # (team_id, user_id) -> row
        self.keys: dict[str, dict[str, Any]] = {}  # hashed token -> key row
        self.deleted_teams: list[dict[str, Any]] = []  # the audit table behind ?status=deleted
        self._secrets: dict[str, str] = {}  # "sk-..." -> hashed token
        self._heap: dict[str, int] = {}  # "team:<id>" / "user:<id>" / "deleted:<id>" -> last write
        self._writes = 0
        self._op_stamp: str | None = None
        self._last_time: datetime | None = None
        # lower-cased e-mail -> user ids holding it, kept by _touch/_drop_user: the duplicate
        # check of /user/new must not scan every user (O(n^2) for a 50,000-user benchmark).
        self._by_email: dict[str, set[str]] = {}
        self._listings: dict[tuple[Any, ...], list[dict[str, Any]]] = {}  # emptied by every write
        self._email_of: dict[str, str] = {}

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One request is one transaction: every row it writes gets the same timestamp, as on the
        real proxy. Successive operations get strictly increasing milliseconds, so creation order
        stays visible in created_at even when the emulator answers within one millisecond."""
        if self._op_stamp is not None:  # nested: keep the outer operation's stamp
            yield
            return
        self._listings.clear()  # every write goes through here
        now = db_now()
        if self._last_time is not None and now <= self._last_time:
            now = self._last_time + timedelta(milliseconds=1)
        self._last_time = now
        self._op_stamp = fmt_time(now)
        try:
            yield
        finally:
            self._op_stamp = None

    def _stamp(self) -> str:
        assert self._op_stamp is not None, "state writes happen inside _operation()"
        return self._op_stamp

    def _touch(self, kind: str, row: dict[str, Any]) -> None:
        """A write: bump updated_at and move the row to the end of the table's physical order."""
        if "updated_at" in row:
            row["updated_at"] = self._stamp()
        self._writes += 1
        self._heap[f"{kind}:{row['id'] if kind == 'deleted' else row[f'{kind}_id']}"] = self._writes
        if kind == "user":
            self._index_email(row["user_id"], row.get("user_email"))

    def _index_email(self, user_id: str, email: str | None) -> None:
        old = self._email_of.pop(user_id, None)
        if old is not None:
            self._by_email[old].discard(user_id)
        if email:
            self._email_of[user_id] = email.lower()
            self._by_email.setdefault(email.lower(), set()).add(user_id)

    def _listing(self, query: TeamQuery | UserQuery,
                 compute: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The filtered, ordered rows of a listing, reused while nothing was written: a client
        paging through 50,000 users asks for the same order 500 times (a database has an index)."""
        filters = sorted((k, v) for k, v in vars(query).items() if k not in ("page", "page_size"))
        key = (type(query).__name__, *filters)
        if key not in self._listings:
            self._listings[key] = compute()
        return self._listings[key]


def sorted_rows(
    rows: list[dict[str, Any]], column: str, order: str, heap: Callable[[Mapping[str, Any]], int]
) -> list[dict[str, Any]]:
    """Postgres order: NULLs last ascending and first descending. Equal values keep the table's
    physical order, which is the order of each row's last write, in both directions (observed)."""
    rows = sorted(rows, key=heap)
    present = [r for r in rows if r.get(column) is not None]
    value = parse_time if column in ("created_at", "updated_at") else (lambda v: v)
    present.sort(key=lambda r: value(r[column]), reverse=order == "desc")  # stable, also when reversed
    missing = [r for r in rows if r.get(column) is None]
    return missing + present if order == "desc" else present + missing


def page_of(rows: list[dict[str, Any]], page: int, page_size: int) -> list[dict[str, Any]]:
    start = (page - 1) * page_size
    return rows[start : start + page_size]


def has_email(row: Mapping[str, Any], email: str, *, fold: bool) -> bool:
    value = row.get("user_email")
    if value is None:
        return False
    return value.lower() == email.lower() if fold else value == email
