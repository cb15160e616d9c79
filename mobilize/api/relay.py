"""Relay conventions: opaque global IDs and cursor connections with keyset paging."""

from __future__ import annotations

import base64
import binascii
from typing import Generic, TypeVar

import strawberry

from graphql import GraphQLError

N = TypeVar("N")


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode())


def from_global_id(value: str) -> tuple[str, int]:
    """(type name, primary key); a malformed ID is the caller's error, said plainly."""
    try:
        type_name, _, pk = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        return type_name, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise GraphQLError(f"malformed ID {value!r}") from None


def expect_global_id(value: str, type_name: str, argument: str) -> int:
    kind, pk = from_global_id(value)
    if kind != type_name:
        raise GraphQLError(f"argument {argument!r} expects a {type_name} ID, got a {kind} ID")
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
    try:
        prefix, _, pk = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        if prefix != "cursor":
            raise ValueError(prefix)
        return int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise GraphQLError(f"malformed cursor {value!r}") from None


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
