"""OData pieces of the Graph wire protocol: errors, query options, $select, $filter, skip tokens."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from emulators.graph.tenant import ODATA_TYPE, PROPERTIES, DirectoryObject

JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
MAX_TOP = 999
DEFAULT_TOP = 100
_LINK_SAFE = ",'():@$"


class GraphError(Exception):
    """An error answer in Graph's shape; raised anywhere below the router."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str, client_request_id: str | None = None) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(what: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{what}' does not exist or one of its queried reference-property objects are not present.",
    )


# ---- query options ---------------------------------------------------------------------------------


def normalize_query(query: dict[str, str]) -> dict[str, str]:
    """Graph treats system query option names case-insensitively ($skipToken == $skiptoken)."""
    return {(k.lower() if k.startswith("$") else k): v for k, v in query.items()}


def parse_top(query: dict[str, str]) -> int:
    raw = query.get("$top")
    if raw is None:
        return DEFAULT_TOP
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.")
    return int(raw)


def parse_select(query: dict[str, str]) -> tuple[str, ...] | None:
    raw = query.get("$select")
    if raw is None:
        return None
    names = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
    if not names:
        raise bad_request("Invalid $select: empty property list.")
    return names


def check_select(select: tuple[str, ...] | None, kinds: Iterable[str], extra: Iterable[str] = ()) -> None:
    """400 for a property no type in ``kinds`` has (Graph: 'Could not find a property named ...')."""
    if select is None:
        return
    known = set(extra).union(*(PROPERTIES[k] for k in kinds))
    for name in select:
        if name not in known:
            kind = next(iter(kinds))
            raise bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.{kind}'.")


def encode_query(query: dict[str, str]) -> str:
    """Re-encode options like Graph's nextLinks: literal `$` names and commas, the rest escaped."""
    return "&".join(f"{name}={quote(value, safe=_LINK_SAFE)}" for name, value in query.items())


def is_eventual(headers: dict[str, str]) -> bool:
    return (headers.get("consistencylevel") or "").strip().lower() == "eventual"


# ---- rendering -------------------------------------------------------------------------------------


def render(
    obj: DirectoryObject, select: tuple[str, ...] | None, default: tuple[str, ...], *, polymorphic: bool
) -> dict[str, Any]:
    """An object's JSON: the selected properties it has (plus id), or its default property set."""
    names = select if select is not None else default
    body: dict[str, Any] = {"@odata.type": ODATA_TYPE[obj.kind]} if polymorphic else {}
    body["id"] = obj.id
    for name in names:
        if name != "id" and name in PROPERTIES[obj.kind]:
            body[name] = obj.get(name)
    return body


def select_suffix(select: tuple[str, ...] | None) -> str:
    return f"({','.join(select)})" if select else ""


# ---- skip tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the item whose sort key is ``after``; ``page`` counts from 1."""

    after: str | None = None
    page: int = 1

    def encode(self) -> str:
        raw = json.dumps({"a": self.after, "p": self.page}, separators=(",", ":")).encode()
        return "RFNwdA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str | None) -> Cursor:
        if token is None:
            return cls()
        try:
            body = token.removeprefix("RFNwdA")
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return cls(after=data["a"], page=int(data["p"]))
        except (ValueError, KeyError, TypeError):
            raise bad_request("Invalid skip token.") from None


# ---- $filter ---------------------------------------------------------------------------------------

Predicate = Callable[[DirectoryObject], bool]
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_][\w./:]*)|(?P<num>-?\d+))"
)
_ADVANCED = {"ne", "not", "endswith"}


@dataclass
class ParsedFilter:
    predicate: Predicate
    advanced: bool  # needs ConsistencyLevel: eventual + $count=true (graph.md §1.4)
    longest_in: int  # the most values of one `in` list (15 at most without advanced query parameters)


def parse_filter(text: str, kind: str) -> ParsedFilter:
    """Parse the default $filter subset: eq/ne/in/startswith/endswith/not/and/or/any() on ``kind``."""
    parser = _FilterParser(_tokenize(text), kind)
    predicate = parser.parse_or()
    if parser.pos != len(parser.tokens):
        raise bad_request(f"Syntax error at position {parser.pos} in '{text}'.", "BadRequest")
    return ParsedFilter(predicate, parser.advanced, parser.longest_in)


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise bad_request(f"Syntax error: character at position {pos} in '{text}'.", "BadRequest")
        tokens.append(match.group(match.lastgroup or 0))
        pos = match.end()
    return tokens


class _FilterParser:
    def __init__(self, tokens: list[str], kind: str) -> None:
        self.tokens = tokens
        self.kind = kind
        self.pos = 0
        self.advanced = False
        self.longest_in = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.lower() != expected):
            raise bad_request(
                f"Syntax error in $filter: expected {expected or 'a token'}, got {token!r}.", "BadRequest"
            )
        self.pos += 1
        return token

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else lambda o: any(p(o) for p in parts)

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else lambda o: all(p(o) for p in parts)

    def parse_unary(self) -> Predicate:
        token = (self.peek() or "").lower()
        if token == "not":
            self.take()
            self.advanced = True
            inner = self.parse_unary()
            return lambda o: not inner(o)
        if token == "(":
            self.take()
            inner = self.parse_or()
            self.take(")")
            return inner
        if token in ("startswith", "endswith"):
            return self.parse_function(token)
        return self.parse_comparison()

    def parse_function(self, name: str) -> Predicate:
        self.take()
        self.advanced |= name in _ADVANCED
        self.take("(")
        prop = self.property()
        self.take(",")
        value = str(self.literal()).lower()
        self.take(")")
        test = str.startswith if name == "startswith" else str.endswith
        return lambda o: isinstance(o.get(prop), str) and test(o.get(prop).lower(), value)

    def parse_comparison(self) -> Predicate:
        word = self.take()
        if word.endswith("/any"):
            return self.parse_any(word.removesuffix("/any"))
        prop = self.check_property(word)
        op = self.take().lower()
        if op == "in":
            values = self.literal_list()
            self.longest_in = max(self.longest_in, len(values))
            return lambda o: any(_equal(o.get(prop), v) for v in values)
        if op not in ("eq", "ne"):
            raise bad_request(f"Unsupported operator '{op}' in $filter.", "Request_UnsupportedQuery")
        self.advanced |= op in _ADVANCED
        value = self.literal()
        if op == "eq":
            return lambda o: _equal(o.get(prop), value)
        return lambda o: not _equal(o.get(prop), value)

    def parse_any(self, prop_word: str) -> Predicate:
        prop = self.check_property(prop_word)
        self.take("(")
        self.take()  # the lambda variable, e.g. `c:c`
        self.take("eq")
        value = self.literal()
        self.take(")")
        return lambda o: any(_equal(item, value) for item in o.get(prop) or [])

    def literal_list(self) -> list[Any]:
        self.take("(")
        values = [self.literal()]
        while self.peek() == ",":
            self.take()
            values.append(self.literal())
        self.take(")")
        return values

    def property(self) -> str:
        return self.check_property(self.take())

    def check_property(self, name: str) -> str:
        if name not in PROPERTIES[self.kind]:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{self.kind}'."
            )
        return name

    def literal(self) -> Any:
        token = self.take()
        if token.startswith("'"):
            return token[1:-1].replace("''", "'")
        constants = {"true": True, "false": False, "null": None}
        if token.lower() in constants:
            return constants[token.lower()]
        if token.lstrip("-").isdigit():
            return int(token)
        raise bad_request(f"Syntax error in $filter: '{token}' is not a literal.", "BadRequest")


def _equal(actual: Any, expected: Any) -> bool:
    # directory string comparisons are case-insensitive (ids, UPNs, names)
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    return actual == expected
