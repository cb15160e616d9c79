"""The model enums the API shows, each registered once with strawberry (with its description)
and named here, so every API module annotates with the same types."""

from __future__ import annotations

import enum

import strawberry

from mobilize import models as m
from mobilize.coverage import risk

GridLevel = m.GridLevel
CommunityKind = m.CommunityKind
HouseholdTag = m.HouseholdTag
TeamKind = m.TeamKind
ResponderKind = m.ResponderKind
GridStatus = m.GridStatus
RiskReason = risk.RiskReason
TaskKind = m.TaskKind
TaskStatus = m.TaskStatus
CheckResult = m.CheckResult
MobilisationKind = m.MobilisationKind
MobilisationStatus = m.MobilisationStatus
AssignmentRole = m.AssignmentRole
AssignmentSource = m.AssignmentSource
AssignmentStatus = m.AssignmentStatus
JobStatus = m.JobStatus
LeaveReason = m.LeaveReason
ActivityKind = m.ActivityKind
ActivityStatus = m.ActivityStatus
EnrolmentKind = m.EnrolmentKind
EnrolmentStatus = m.EnrolmentStatus

_DESCRIBED: dict[type[enum.Enum], str | None] = {
    GridLevel: "一般网格 general grid or 微网格 micro-grid.",
    CommunityKind: "社区 urban community or 村 village.",
    HouseholdTag: "The seven-colour map (七彩图).",
    TeamKind: None,
    ResponderKind: None,
    GridStatus: "Where a micro-grid stands.",
    RiskReason: "Why a grid will miss the deadline.",
    TaskKind: "入户核查/物资配送/核酸保障/秩序维护/宣传/扫码",
    TaskStatus: None,
    CheckResult: None,
    LeaveReason: "请假事由 why a person is away.",
    ActivityKind: "巡逻 patrol, 扫楼 building round, 演练 drill, 社区活动 community event.",
    ActivityStatus: "scheduled, done (held, attendance recorded), checked (credited).",
    EnrolmentKind: "党员报到 party member, 干部下沉报到 cadre, 志愿者报名 volunteer.",
    EnrolmentStatus: None,
    MobilisationKind: "疫情/防汛/地震/火灾/其他",
    MobilisationStatus: None,
    AssignmentRole: None,
    AssignmentSource: None,
    AssignmentStatus: None,
    JobStatus: None,
}
for _kind, _description in _DESCRIBED.items():
    strawberry.enum(_kind, description=_description)
