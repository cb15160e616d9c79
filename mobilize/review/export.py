"""The after-action report as files reviewers open: Markdown to read, an Excel workbook to
work in, the coverage curve and a map as pictures, and the raw event log as JSON lines.

Labels are Chinese first, English second. Pictures need a font with Chinese glyphs; where
the machine has none (a fresh laptop), they are labelled in English only rather than with
empty boxes (`apt-get install fonts-wqy-microhei` or any Noto CJK font fixes that)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.events import read_log
from mobilize.markup import markdown_text
from mobilize.models import Grid
from mobilize.review.report import CAUSES, Distribution, Report
from mobilize.settings import DISPLAY_TIMEZONE
from mobilize.sheets import write_workbook

FILES = ("report.md", "report.xlsx", "coverage.png", "map.png", "events.jsonl")
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
)


def write_report(
    session: Session, report: Report, out: Path, display_tz: str = DISPLAY_TIMEZONE
) -> list[Path]:
    """Write every file of the report into `out` (created if need be); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    tz = ZoneInfo(display_tz)
    (out / "report.md").write_text(markdown(report, tz), encoding="utf-8")
    workbook(report, tz, out / "report.xlsx")
    _coverage_png(report, out / "coverage.png")
    _map_png(session, report, out / "map.png")
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for line in event_lines(session, report.mobilisation_id):
            f.write(line + "\n")
    return [out / name for name in FILES]


def event_lines(session: Session, mobilisation_id: int) -> Iterator[str]:
    """The mobilisation's log, one JSON object per event, in its sequence."""
    rows = read_log(session, mobilisation_id)
    for mseq, at, actor, kind, subject_type, subject_id, payload in rows:
        yield json.dumps(
            {
                "seq": mseq,
                "at": at.isoformat(),
                "actor": actor,
                "kind": kind,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "payload": payload,
            },
            ensure_ascii=False,
            sort_keys=True,
        )


# -- text --------------------------------------------------------------------------------------


def _t(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if at else "—"


def _n(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _dist_row(name: str, d: Distribution) -> list[Any]:
    return [name, d.count, d.mean, d.p50, d.p90, d.max]


DIST_HEAD = ["", "人数/网格数 Count", "平均 Mean", "中位 P50", "P90", "最长 Max"]


def summary_rows(report: Report, tz: ZoneInfo) -> list[tuple[str, Any]]:
    """The headline figures, as label/value pairs (Markdown and the workbook share them)."""
    head = [
        ("动员 Mobilisation", f"#{report.mobilisation_id} {report.title} ({report.kind})"),
        ("启动时间 T0", _t(report.t0, tz)),
        ("到岗时限 Deadline", _t(report.deadline, tz)),
        ("目标 Target", f"{report.target_minutes:g} 分钟内全部微网格到岗 min, every micro-grid"),
    ]
    tail = [
        ("调派人员 People called", report.people_called),
        ("事件数 Events", report.events),
    ]
    if report.in_progress:
        return [
            *head,
            ("状态 Status", f"进行中 In progress, as of {_t(report.as_of, tz)}"),
            ("微网格 Micro-grids", report.grids),
            ("已到岗 Mobilised so far", report.mobilised),
            ("已到岗率 % so far", report.mobilised_pct_at_deadline),
            ("未按时到岗 Missed the deadline", "时限未到 not yet due"),
            *tail,
        ]
    return [
        *head,
        ("结束 Stood down", _t(report.stood_down_at, tz)),
        ("微网格 Micro-grids", report.grids),
        ("时限内到岗 Mobilised by the deadline", report.mobilised_by_deadline),
        ("时限内到岗率 % by the deadline", report.mobilised_pct_at_deadline),
        ("最终到岗 Mobilised in the end", report.mobilised),
        ("未按时到岗 Missed the deadline", len(report.missed)),
        *tail,
    ]


def _table(head: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, str):
            return markdown_text(v)
        return "—" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


AREA_HEAD = [
    "代码 Code",
    "名称 Name",
    "微网格 Grids",
    "按时到岗 On time",
    "未按时 Missed",
    "到岗用时中位 Mobilise P50",
    "到岗用时P90 Mobilise P90",
    "确认用时中位 Ack P50",
    "确认用时P90 Ack P90",
]
MISSED_HEAD = [
    "微网格 Grid",
    "名称 Name",
    "社区 Community",
    "街道 Street",
    "原因 Cause",
    "实际到岗(分) Mobilised at (min)",
    "派出 Sent",
    "拒绝 Declined",
    "确认 Acknowledged",
    "迟到 Arrived late",
]
UNIT_HEAD = [
    "单位 Unit",
    "名称 Name",
    "计划(配额) Quota",
    "调派 Called",
    "确认 Acknowledged",
    "时限内到岗 Arrived on time",
    "最终到岗 Arrived",
    "达标 Quota met",
]
KIND_HEAD = [
    "类别 Kind",
    "调派 Called",
    "确认 Acknowledged",
    "拒绝 Declined",
    "时限内到岗 Arrived on time",
    "最终到岗 Arrived",
]
TIMELINE_HEAD = [
    "序号 Seq",
    "时间 Time",
    "T0+分钟 Minute",
    "操作人 Actor",
    "指令 Command",
    "详情 Detail",
]


def area_rows(report: Report, level: str) -> list[list[Any]]:
    areas = report.streets if level == "street" else report.communities
    return [
        [
            a.code,
            a.name,
            a.grids,
            a.mobilised_by_deadline,
            a.missed,
            a.time_to_mobilise.p50,
            a.time_to_mobilise.p90,
            a.time_to_acknowledge.p50,
            a.time_to_acknowledge.p90,
        ]
        for a in areas
    ]


def missed_rows(report: Report) -> list[list[Any]]:
    return [
        [
            m.code,
            m.name,
            m.community,
            m.street,
            m.cause_label,
            m.mobilised_minute,
            m.assigned,
            m.declined,
            m.acknowledged,
            m.arrived_late,
        ]
        for m in report.missed
    ]


def unit_rows(report: Report) -> list[list[Any]]:
    return [
        [
            u.code,
            u.name,
            u.quota,
            u.called,
            u.acknowledged,
            u.arrived_by_deadline,
            u.arrived,
            "是 yes" if u.quota_met else "否 no",
        ]
        for u in report.units
    ]


def kind_rows(report: Report) -> list[list[Any]]:
    return [
        [k.kind, k.called, k.acknowledged, k.declined, k.arrived_by_deadline, k.arrived]
        for k in report.kinds
    ]


def timeline_rows(report: Report, tz: ZoneInfo) -> list[list[Any]]:
    return [
        [
            c.mseq,
            _t(c.at, tz),
            c.minute,
            c.actor,
            c.label,
            json.dumps(c.payload, ensure_ascii=False, sort_keys=True),
        ]
        for c in report.timeline
    ]


IMAGES = ("coverage.png", "map.png")


def markdown_with_images(session: Session, report: Report, tz: ZoneInfo) -> str:
    """The Markdown report as one file: its pictures embedded (a download has no folder)."""
    drawn: dict[str, str] = {}
    for name, draw in (
        ("coverage.png", lambda f: _coverage_png(report, f)),
        ("map.png", lambda f: _map_png(session, report, f)),
    ):
        buffer = io.BytesIO()
        draw(buffer)
        drawn[name] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return markdown(report, tz, drawn)


def markdown(report: Report, tz: ZoneInfo, images: Mapping[str, str] | None = None) -> str:
    """The report as Markdown; `images` gives each picture's address (by default the files
    written beside it; a download embeds them)."""
    src = {name: name for name in IMAGES} | dict(images or {})
    causes: dict[str, int] = {}
    for m in report.missed:
        causes[m.cause] = causes.get(m.cause, 0) + 1
    dists = [
        _dist_row("确认用时 Time to acknowledge", report.time_to_acknowledge),
        _dist_row("到达用时 Time to arrive", report.time_to_arrive),
        _dist_row("网格到岗用时 Time to mobilise a grid", report.time_to_mobilise),
    ]
    buckets = [
        [label, a, b, c]
        for (label, a), (_, b), (_, c) in zip(
            report.time_to_acknowledge.buckets,
            report.time_to_arrive.buckets,
            report.time_to_mobilise.buckets,
            strict=True,
        )
    ]
    parts = [
        f"# 战后复盘报告 After-action report: {markdown_text(report.title)}",
        _table(["项目 Item", "数值 Value"], [list(r) for r in summary_rows(report, tz)]),
        "## 用时分布 How long it took (分钟 minutes)",
        _table(DIST_HEAD, dists),
        _table(
            ["分钟 Minutes", "确认 Acknowledge", "到达 Arrive", "网格到岗 Grid mobilised"], buckets
        ),
        "## 覆盖曲线 Coverage against the target",
        f"![coverage]({src['coverage.png']})\n\n![map]({src['map.png']})\n\n"
        + _headline(report, tz),
        "## 街道 By street",
        _table(AREA_HEAD, area_rows(report, "street")),
        "## 社区 By community",
        _table(AREA_HEAD, area_rows(report, "community")),
        "## 未按时到岗的微网格 Grids that missed the deadline",
        *(
            ["时限未到，尚无。 The deadline has not come: none yet."]
            if report.in_progress
            else [
                _table(
                    ["原因 Cause", "网格数 Grids"],
                    [[CAUSES[c], n] for c, n in sorted(causes.items(), key=lambda kv: -kv[1])],
                ),
                _table(MISSED_HEAD, missed_rows(report)),
            ]
        ),
        "## 力量：计划与实到 Forces planned against forces that came",
        _table(UNIT_HEAD, unit_rows(report)),
        _table(KIND_HEAD, kind_rows(report)),
        "## 指挥时间线 Timeline of commands",
        _table(TIMELINE_HEAD, timeline_rows(report, tz)),
        "原始事件见 events.jsonl。 The raw event log is in events.jsonl.",
    ]
    return "\n\n".join(parts) + "\n"


def _headline(report: Report, tz: ZoneInfo) -> str:
    if report.in_progress:
        return (
            f"进行中（截至 {_t(report.as_of, tz)}）：已到岗 {report.mobilised}/{report.grids} "
            f"个微网格（{report.mobilised_pct_at_deadline:g}%），"
            f"时限 T0+{report.target_minutes:g} 分钟。 "
            f"In progress: {report.mobilised} of {report.grids} micro-grids mobilised so far; "
            f"the deadline is T0+{report.target_minutes:g} min."
        )
    return (
        f"时限（T0+{report.target_minutes:g} 分钟）时到岗 {report.mobilised_by_deadline}/"
        f"{report.grids} 个微网格（{report.mobilised_pct_at_deadline:g}%）。 "
        f"{report.mobilised_by_deadline} of {report.grids} micro-grids were mobilised by the "
        "deadline."
    )


# -- workbook ----------------------------------------------------------------------------------


def workbook(report: Report, tz: ZoneInfo, target: Path | BinaryIO) -> None:
    """The report as an Excel workbook, to a file or a stream (a download)."""
    write_workbook(
        [
            (
                "概要 Summary",
                ["项目 Item", "数值 Value"],
                [list(r) for r in summary_rows(report, tz)],
            ),
            (
                "用时 Times",
                DIST_HEAD,
                [
                    _dist_row("确认用时 Time to acknowledge", report.time_to_acknowledge),
                    _dist_row("到达用时 Time to arrive", report.time_to_arrive),
                    _dist_row("网格到岗用时 Time to mobilise", report.time_to_mobilise),
                ],
            ),
            ("街道 Streets", AREA_HEAD, area_rows(report, "street")),
            ("社区 Communities", AREA_HEAD, area_rows(report, "community")),
            ("未按时 Missed", MISSED_HEAD, missed_rows(report)),
            ("单位 Units", UNIT_HEAD, unit_rows(report)),
            ("类别 Kinds", KIND_HEAD, kind_rows(report)),
            ("时间线 Timeline", TIMELINE_HEAD, timeline_rows(report, tz)),
            (
                "曲线 Curve",
                ["T0+分钟 Minute", "已到岗网格 Grids mobilised", "占比% Percent"],
                [list(p) for p in report.curve],
            ),
        ],
        target,
    )


# -- pictures ----------------------------------------------------------------------------------


def _labels() -> tuple[Any, bool]:
    """pyplot, and whether a font with Chinese glyphs is in use."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    available = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in available), None)
    if found:
        plt.rcParams["font.family"] = [found, "DejaVu Sans"]
    return plt, found is not None


def _label(cjk: bool, zh: str, en: str) -> str:
    return f"{zh} {en}" if cjk else en


def _coverage_png(report: Report, path: Path | BinaryIO) -> None:
    curve = [(0.0, 0.0)] + [(minute, pct) for minute, _, pct in report.curve]
    coverage_curves_png(
        [(("已到岗微网格", "micro-grids mobilised"), curve)],
        target_minutes=report.target_minutes,
        title=(f"覆盖曲线：{report.title}", "Coverage against the target"),
        path=path,
    )


CURVE_COLOURS = ("#c0392b", "#2980b9", "#8e44ad", "#d35400")


def coverage_curves_png(
    curves: list[tuple[tuple[str, str], list[tuple[float, float]]]],
    *,
    target_minutes: float,
    title: tuple[str, str],
    path: Path | BinaryIO,
) -> None:
    """% of micro-grids mobilised against minutes since T0, one step line per curve
    (labels and title given as (Chinese, English)), with the deadline and the target."""
    plt, cjk = _labels()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=120)
    end = max([target_minutes * 1.1, *(p[0] for _, c in curves for p in c)])
    for (label, curve), colour in zip(curves, CURVE_COLOURS, strict=False):
        xs, ys = [p[0] for p in curve], [p[1] for p in curve]
        ax.step(
            [*xs, end], [*ys, ys[-1]], where="post", color=colour, linewidth=2,
            label=_label(cjk, *label),
        )  # fmt: skip
    ax.axvline(
        target_minutes,
        color="#2c3e50",
        linestyle="--",
        label=_label(cjk, "时限", f"deadline (T0+{target_minutes:g} min)"),
    )
    ax.axhline(100, color="#27ae60", linestyle=":", label=_label(cjk, "目标", "target: 100%"))
    ax.set_xlim(0, end)
    ax.set_ylim(0, 105)
    ax.set_xlabel(_label(cjk, "启动后分钟", "minutes since T0"))
    ax.set_ylabel(_label(cjk, "到岗率 %", "% of micro-grids mobilised"))
    ax.set_title(_label(cjk, *title))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _map_png(session: Session, report: Report, path: Path | BinaryIO) -> None:
    import math

    import numpy as np
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import Normalize
    from matplotlib.patches import Polygon

    plt, cjk = _labels()
    shapes = session.execute(
        select(Grid.id, Grid.geom).where(Grid.id.in_(list(report.grid_minutes)))
    ).all()
    patches, values, never = [], [], []
    for grid_id, geom in shapes:
        parts = getattr(geom, "geoms", [geom])
        minute = report.grid_minutes.get(grid_id)
        for part in parts:
            patch = Polygon(np.asarray(part.exterior.coords), closed=True)
            if minute is None:
                never.append(patch)
            else:
                patches.append(patch)
                values.append(minute)
    fig, ax = plt.subplots(figsize=(9, 9), dpi=120)
    norm = Normalize(0, report.target_minutes)
    timed = PatchCollection(patches, cmap="RdYlGn_r", norm=norm, edgecolor="white", linewidth=0.2)
    timed.set_array(np.asarray(values, dtype=float))
    ax.add_collection(timed)
    ax.add_collection(PatchCollection(never, facecolor="#222222", edgecolor="white", linewidth=0.2))
    ax.autoscale_view()
    if shapes:
        lat = float(np.mean([g.centroid.y for _, g in shapes]))
        ax.set_aspect(1 / max(math.cos(math.radians(lat)), 0.1))
    bar = fig.colorbar(timed, ax=ax, shrink=0.7, extend="max")
    bar.set_label(_label(cjk, "到岗用时（分钟）", "minutes to mobilised (dark: never)"))
    ax.set_title(_label(cjk, "微网格到岗用时", "Time to mobilise each micro-grid"))
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
