"""Writing households in bulk: half a million rows in seconds, for the first import of a
district and for the households an update adds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy.orm import Session

from mobilize.bundle.model import Bundle
from mobilize.db.bulk import ROWS_PER_WRITE, copy_text, loading_empty_table
from mobilize.db.engine import is_postgres
from mobilize.db.types import points_ewkb_hex, points_wkb
from mobilize.progress import NoProgress, Progress

_BATCH = 50_000
COLUMNS = "district_id, micro_grid_id, code, size, tags, building_id, building_unit, door, address"


def write_households(
    session: Session,
    bundle: Bundle,
    district_id: int,
    grid_ids: Mapping[str, int],
    building_ids: Mapping[str, int],
    progress: Progress | None = None,
    *,
    rows: Sequence[int] | None = None,
) -> None:
    """The bundle's households (or those at `rows`) into the table, as fast as the backend
    takes them: COPY on PostgreSQL, one executemany a batch on SQLite."""
    progress = progress or NoProgress()
    h = bundle.households if rows is None else bundle.households.subset(rows)
    n = len(h)
    if n == 0:
        return
    grid_of = np.fromiter((grid_ids[code] for code in h.micro_grid), dtype=np.int64, count=n)
    building_of = [building_ids[code] if code else None for code in h.building]
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    if is_postgres(session.get_bind()):
        ewkb = points_ewkb_hex(h.lon, h.lat)
        columns = f"{COLUMNS}, geom"
        grids, sizes, tags = grid_of.tolist(), h.size.tolist(), h.tags.tolist()
        buildings = ["\\N" if b is None else str(b) for b in building_of]
        reported = 0
        with (
            loading_empty_table(session, "household"),
            dbapi.cursor() as cursor,
            cursor.copy(f"COPY household ({columns}) FROM STDIN") as copy,
        ):
            # COPY's text format written a part at a time (row by row, the driver's
            # formatting took most of the write), the server storing one part while
            # Python formats the next.
            for start in range(0, n, ROWS_PER_WRITE):
                stop = min(n, start + ROWS_PER_WRITE)
                copy.write(
                    "".join(
                        f"{district_id}\t{grids[i]}\t{copy_text(h.code[i])}\t{sizes[i]}\t"
                        f"{tags[i]}\t{buildings[i]}\t{copy_text(h.building_unit[i])}\t"
                        f"{copy_text(h.door[i])}\t{copy_text(h.address[i])}\t{ewkb[i]}\n"
                        for i in range(start, stop)
                    )
                )
                if stop - reported >= _BATCH or stop == n:
                    progress.advance(stop - reported)
                    reported = stop
        progress.advance(0)  # the keys and indexes a first load set aside are back
        return
    wkb = points_wkb(h.lon, h.lat)
    sql = f"INSERT INTO household ({COLUMNS}, geom) VALUES ({', '.join('?' * 10)})"
    cursor = dbapi.cursor()
    try:
        sizes, tags, grids = h.size.tolist(), h.tags.tolist(), grid_of.tolist()
        for start in range(0, n, _BATCH):
            stop = min(n, start + _BATCH)
            cursor.executemany(
                sql,
                [
                    (
                        district_id,
                        grids[i],
                        h.code[i],
                        sizes[i],
                        tags[i],
                        building_of[i],
                        h.building_unit[i],
                        h.door[i],
                        h.address[i],
                        wkb[i],
                    )
                    for i in range(start, stop)
                ],
            )
            progress.advance(stop - start)
    finally:
        cursor.close()
