"""Helpers to write a bundle and break it in the ways real files break."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from mobilize.bundle import Bundle, write_bundle


def write(bundle: Bundle, path: Path, **kwargs: Any) -> Path:
    return write_bundle(bundle, path, **kwargs)


def load_layer(path: Path, name: str) -> dict[str, Any]:
    return json.loads((path / name).read_text(encoding="utf-8"))


def save_layer(path: Path, name: str, doc: dict[str, Any]) -> None:
    (path / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def feature(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in doc["features"] if f["properties"]["code"] == code)


def read_rows(path: Path, name: str) -> list[dict[str, str]]:
    with (path / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, name: str, rows: list[dict[str, str]]) -> None:
    with (path / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
