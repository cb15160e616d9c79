"""Relay conventions: opaque global IDs and cursor connections with keyset paging."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Generic, TypeVar

import strawberry

from graphql import GraphQLError

N = TypeVar("N")


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode())


MAX_PK = 2**31 - 1  # primary keys are 32-bit integers on both backends
_PK = re.compile(r"[1-9][0-9]{0,9}")
_TYPE = re.compile(r"[A-Za-z]{1,40}")


def _decoded(value: str, what: str) -> tuple[str, int]:
    """The two parts of an opaque value this API made, or a GraphQLError naming it. Only the
    exact text `to_global_id`/`to_cursor` produce is accepted: `Grid: 1`, `Grid:1_0` or
    `Grid:012` would otherwise name grid 1, 10 and 12 too, and a 20-digit key overflows the
    database's integer."""
    shown = value[:60] if isinstance(value, str) else type(value).__name__
    try:
        kind, sep, pk = base64.urlsafe_b64decode(value.encode("ascii")).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError, AttributeError):
        raise _bad(f"malformed {what} {shown!r}") from None
    canonical = base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode()
    if not (sep and _TYPE.fullmatch(kind) and _PK.fullmatch(pk) and value == canonical):
        raise _bad(f"malformed {what} {shown!r}")
    if int(pk) > MAX_PK:
        raise _bad(f"malformed {what} {shown!r}: its number is out of range")
    return kind, int(pk)


def _bad(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})


def from_global_id(value: str) -> tuple[str, int]:
    """(type name, primary key); a malformed ID is the caller's error, said plainly."""
    return _decoded(value, "ID")


def expect_global_id(value: str, type_name: str, argument: str) -> int:
    kind, pk = from_global_id(value)
    if kind != type_name:
        raise _bad(f"argument {argument!r} expects a {type_name} ID, got a {kind} ID")
    return pk


def place_ids(street: str | None, community: str | None) -> dict[str, int | None]:
    """A per-place query's `street` and `community` arguments, as `in_scope` keywords."""
    return {
        "street_id": expect_global_id(street, "Street", "street") if street else None,
        "community_id": (
            expect_global_id(community, "Community", "community") if community else None
        ),
    }


def to_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{pk}".encode()).decode()


def from_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    kind, pk = _decoded(value, "cursor")
    if kind != "cursor":
        raise _bad(f"malformed cursor {value[:60]!r}")
    return pk


@strawberry.interface(description="An object with a global ID (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def build(
        cls, nodes: list[N], pks: list[int], *, has_next: bool, has_previous: bool, total: int
    ) -> Connection[N]:
        cursors = [to_cursor(pk) for pk in pks]
        return cls(
            edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=has_previous,
                start_cursor=cursors[0] if cursors else None,
                end_cursor=cursors[-1] if cursors else None,
            ),
            total_count=total,
        )
