"""The drill's parameters: `defaults.toml` (each value with where it comes from), overridden
by `name=value` pairs from the command line."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

from mobilize.errors import InvalidInput


@dataclass(frozen=True)
class DrillParams:
    ack_median_min: float
    ack_sigma: float
    never_answer_share: float
    decline_share: float
    no_show_share: float
    prepare_median_min: float
    prepare_sigma: float
    walk_kmh: float
    cycle_kmh: float
    drive_kmh: float
    detour_factor: float
    travel_sigma: float
    check_min: float
    check_tagged_min: float
    deliver_min: float
    work_sigma: float
    sync_every_min: float
    tick_min: float
    commander_every_min: float
    stand_down_min: float
    messages_per_second: float

    @classmethod
    def defaults(cls) -> DrillParams:
        text = resources.files("mobilize.drill").joinpath("defaults.toml").read_text("utf-8")
        return cls(**{k: float(v) for k, v in tomllib.loads(text).items()})

    def with_overrides(self, pairs: list[str]) -> DrillParams:
        """`name=value` pairs, each checked: a known name and a number in range."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise InvalidInput(
                    "--set",
                    f"{pair!r}: expected name=value, name one of {', '.join(sorted(known))}",
                )
            try:
                number = float(value)
            except ValueError:
                raise InvalidInput(f"--set {name}", f"{value!r} is not a number") from None
            changes[name] = number
        params = replace(self, **changes)
        params.check()
        return params

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_share"):
                if not 0 <= value <= 1:
                    raise InvalidInput(f"--set {f.name}", "a share between 0 and 1")
            elif value < 0 or (value == 0 and not f.name.endswith("_sigma")):
                raise InvalidInput(f"--set {f.name}", "must be more than 0")
        if self.never_answer_share + self.decline_share + self.no_show_share > 1:
            raise InvalidInput("--set", "never_answer + decline + no_show shares exceed 1")

    def speed_kmh(self, mode: str) -> float:
        return {"walk": self.walk_kmh, "cycle": self.cycle_kmh, "drive": self.drive_kmh}[mode]

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
