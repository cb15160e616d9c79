"""The rules a district's data keeps, whichever way it arrives: a bundle's row or an edit
through the API. Each returns the problems as (field, message), so the reader names the file
and line and an edit names the argument."""

from __future__ import annotations

import re

from mobilize.models import GridLevel, ResponderKind

PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")
ADDRESS_LIMIT = 300  # characters, as stored
DOOR_LIMIT = 16  # a unit (单元) or door (门牌), as stored
_KINDS = {k.value for k in ResponderKind}
# The grid a person of these kinds belongs to, by level.
_HOME_LEVEL = {
    ResponderKind.GRID_WORKER.value: GridLevel.GENERAL.value,
    ResponderKind.MICRO_GRID_MEMBER.value: GridLevel.MICRO.value,
}

Problems = list[tuple[str, str]]


def responder_problems(
    *,
    kind: str,
    phone: str,
    unit: str | None,
    unit_known: bool,
    team: str | None,
    team_known: bool,
    home_grid: str | None,
    home_level: str | None,
) -> Problems:
    """A person's kind, phone, unit, team and home grid: `unit`, `team` and `home_grid` are
    codes as given (None: not given); `*_known` whether they exist; `home_level` the level of
    the home grid found (None: no such grid)."""
    found: Problems = []
    if kind and kind not in _KINDS:
        found.append(("kind", f"{kind!r} is not one of {', '.join(sorted(_KINDS))}"))
    if phone and not PHONE.match(phone):
        found.append(("phone", f"{phone!r} is not a phone number"))
    if unit and not unit_known:
        found.append(("unit", f"unknown unit {unit!r}"))
    elif not unit and kind == ResponderKind.SUNK_CADRE:
        found.append(("unit", "a sunk cadre needs the unit that sends them"))
    if team and not team_known:
        found.append(("team", f"unknown team {team!r}"))
    elif not team and kind == ResponderKind.SHOCK_TEAM_MEMBER:
        found.append(("team", "a shock team member needs their team"))
    need = _HOME_LEVEL.get(kind)
    if home_grid and home_level is None:
        found.append(("home_grid", f"unknown grid {home_grid!r}"))
    elif need and not home_grid:
        found.append(("home_grid", f"a {kind} needs their {need} grid"))
    elif need and home_level != need:
        found.append(
            (
                "home_grid",
                f"{home_grid!r} is a {home_level} grid; a {kind} belongs to a {need} grid",
            )
        )
    return found


def place_problems(unit: str, door: str, address: str) -> Problems:
    """A household's unit (单元), door and address, within what is stored."""
    found: Problems = []
    for field, value in (("unit", unit), ("door", door)):
        if len(value) > DOOR_LIMIT:
            found.append((field, f"{value!r} is longer than {DOOR_LIMIT} characters"))
    if len(address) > ADDRESS_LIMIT:
        found.append(("address", f"longer than {ADDRESS_LIMIT} characters"))
    return found
