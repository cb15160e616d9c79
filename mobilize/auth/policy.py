"""The access policy, in one table: operation x role -> access.

Every root field of the schema (query, mutation, subscription) has an entry; a test walks the
exported schema and fails on a field without one, and an operation missing here is refused.
What each role then *sees* is narrowed by mobilize.auth.scope, in the services."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import replace

from mobilize.auth.actor import COMMAND_ROLES, DISPATCH_ROLES, Actor
from mobilize.auth.audit import audit
from mobilize.errors import DomainError, Forbidden
from mobilize.models import Role


class Access(enum.StrEnum):
    PUBLIC = "public"  # anyone, signed in or not (sign-in itself)
    SCOPE = "scope"  # allowed; rows narrowed to the role's district, street or community
    SELF = "self"  # allowed; only the actor's own records (a responder, a user's tokens)


ANYONE = "anyone"
AREA_ROLES = (
    Role.DISTRICT_COMMANDER,
    Role.STREET_COMMANDER,
    Role.COMMUNITY_SECRETARY,
    Role.REVIEWER,
    Role.ADMIN,
)

# Who keeps a place's households and people: its community secretary, street and district.
DATA_KEEPERS = (Role.DISTRICT_COMMANDER, Role.STREET_COMMANDER, Role.COMMUNITY_SECRETARY)
# A unit organiser reads their unit, its pairings and its people.
UNIT = {Role.UNIT_ORGANISER.value: Access.SCOPE}
# Who keeps people: the keepers of places, and a unit's organiser its cadres.
PEOPLE_KEEPERS = (*DATA_KEEPERS, Role.UNIT_ORGANISER)


def _rule(roles: Iterable[Role], access: Access, **others: Access) -> dict[str, Access]:
    rule = {role.value: access for role in roles}
    rule.update(others)
    return rule


POLICY: Mapping[str, Mapping[str, Access]] = {
    # Who am I: every signed-in user, about themself.
    "Query.me": _rule(Role, Access.SELF),
    "Query.unitRoster": _rule([Role.DISTRICT_COMMANDER, Role.UNIT_ORGANISER], Access.SCOPE),
    # Reading the district: area roles within their place; a responder only their own corner.
    "Query.node": _rule(
        AREA_ROLES, Access.SCOPE, responder=Access.SELF, unit_organiser=Access.SCOPE
    ),
    "Query.district": _rule(AREA_ROLES, Access.SCOPE, **UNIT),
    "Query.streets": _rule(AREA_ROLES, Access.SCOPE),
    "Query.communities": _rule(AREA_ROLES, Access.SCOPE, **UNIT),
    "Query.grids": _rule(AREA_ROLES, Access.SCOPE, responder=Access.SELF),
    "Query.households": _rule(AREA_ROLES, Access.SCOPE, responder=Access.SELF),
    "Query.buildings": _rule(AREA_ROLES, Access.SCOPE, responder=Access.SELF),
    "Query.units": _rule(AREA_ROLES, Access.SCOPE, **UNIT),
    "Query.pairings": _rule(AREA_ROLES, Access.SCOPE, **UNIT),
    "Query.teams": _rule(
        AREA_ROLES, Access.SCOPE, responder=Access.SELF, unit_organiser=Access.SCOPE
    ),
    "Query.responders": _rule(
        AREA_ROLES, Access.SCOPE, responder=Access.SELF, unit_organiser=Access.SCOPE
    ),
    # Keeping the district true between emergencies: who owns which data. Each service then
    # acts only within the caller's place as these roles (`editors`).
    "Mutation.editHousehold": _rule(DATA_KEEPERS, Access.SCOPE),
    "Mutation.addResponder": _rule(PEOPLE_KEEPERS, Access.SCOPE),
    "Mutation.editResponder": _rule(PEOPLE_KEEPERS, Access.SCOPE),
    "Mutation.retireResponder": _rule(PEOPLE_KEEPERS, Access.SCOPE),
    "Mutation.saveTeam": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.setTeamMembers": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.setPairing": _rule([Role.DISTRICT_COMMANDER], Access.SCOPE),
    "Mutation.retirePairing": _rule([Role.DISTRICT_COMMANDER], Access.SCOPE),
    "Mutation.redrawMicroGrids": _rule(COMMAND_ROLES, Access.SCOPE),
    # Peacetime: leave and commitments, by the person or whoever keeps their place.
    "Mutation.recordLeave": _rule(PEOPLE_KEEPERS, Access.SCOPE, responder=Access.SELF),
    "Mutation.backOnDuty": _rule(PEOPLE_KEEPERS, Access.SCOPE, responder=Access.SELF),
    "Mutation.recordCommitment": _rule(PEOPLE_KEEPERS, Access.SCOPE, responder=Access.SELF),
    "Mutation.recordFulfilment": _rule(PEOPLE_KEEPERS, Access.SCOPE, responder=Access.SELF),
    # Reporting in (报到) and enrolment: from a phone proved by its code; decided by the
    # community's keepers.
    "Mutation.requestEnrolmentCode": {ANYONE: Access.PUBLIC},
    "Mutation.reportIn": {ANYONE: Access.PUBLIC},
    "Query.enrolments": _rule(AREA_ROLES, Access.SCOPE),
    "Mutation.decideEnrolment": _rule(DATA_KEEPERS, Access.SCOPE),
    # Activities, points and the ledger.
    "Query.activities": _rule(AREA_ROLES, Access.SCOPE, responder=Access.SELF),
    "Query.serviceLedger": _rule(AREA_ROLES, Access.SCOPE),
    "Query.pointsRule": _rule(AREA_ROLES, Access.SCOPE),
    "Mutation.scheduleActivity": _rule(DATA_KEEPERS, Access.SCOPE),
    "Mutation.signUp": _rule([Role.RESPONDER], Access.SELF),
    "Mutation.namePeople": _rule(DATA_KEEPERS, Access.SCOPE),
    "Mutation.recordAttendance": _rule(DATA_KEEPERS, Access.SCOPE),
    "Mutation.checkActivity": _rule(DATA_KEEPERS, Access.SCOPE),
    "Mutation.cancelActivity": _rule(DATA_KEEPERS, Access.SCOPE),
    "Mutation.setPointsRule": _rule([Role.DISTRICT_COMMANDER], Access.SCOPE),
    "Mutation.redeemPoints": _rule(DATA_KEEPERS, Access.SCOPE),
    # Wartime.
    "Query.mobilisations": _rule(AREA_ROLES, Access.SCOPE, responder=Access.SELF),
    "Query.staffingRules": _rule(Role, Access.SCOPE),
    "Mutation.activateMobilisation": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.standDown": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.reassign": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.pinAssignment": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.unpinAssignment": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.markUnavailable": _rule(COMMAND_ROLES, Access.SCOPE),
    "Mutation.acknowledgeAssignment": _rule([Role.RESPONDER], Access.SELF),
    "Mutation.declineAssignment": _rule([Role.RESPONDER], Access.SELF),
    "Query.coverage": _rule(AREA_ROLES, Access.SCOPE),
    "Query.risk": _rule(AREA_ROLES, Access.SCOPE),
    "Mutation.acceptRiskFix": _rule(COMMAND_ROLES, Access.SCOPE),
    "Subscription.coverageChanged": _rule(AREA_ROLES, Access.SCOPE),
    "Subscription.mobilisationEvents": _rule(AREA_ROLES, Access.SCOPE),
    # Review: the record, replay and the after-action report.
    "Query.events": _rule(AREA_ROLES, Access.SCOPE),
    "Query.gridStates": _rule(AREA_ROLES, Access.SCOPE),
    "Query.stateAt": _rule(AREA_ROLES, Access.SCOPE),
    "Query.afterActionReport": _rule(AREA_ROLES, Access.SCOPE),
    "Subscription.playback": _rule(AREA_ROLES, Access.SCOPE),
    # Tasks and the phone.
    "Query.myAssignment": _rule([Role.RESPONDER], Access.SELF),
    "Query.myTasks": _rule([Role.RESPONDER], Access.SELF),
    "Query.myService": _rule([Role.RESPONDER], Access.SELF),
    "Query.myProfile": _rule([Role.RESPONDER], Access.SELF),
    "Query.tasks": _rule(AREA_ROLES, Access.SCOPE, responder=Access.SELF),
    "Mutation.dispatchTask": _rule(DISPATCH_ROLES, Access.SCOPE),
    "Mutation.reassignTask": _rule(DISPATCH_ROLES, Access.SCOPE),
    "Mutation.cancelTask": _rule(DISPATCH_ROLES, Access.SCOPE),
    "Mutation.setTaskPriority": _rule(DISPATCH_ROLES, Access.SCOPE),
    "Mutation.updateTask": _rule([Role.RESPONDER], Access.SELF),
    "Mutation.recordHouseholdCheck": _rule([Role.RESPONDER], Access.SELF),
    "Mutation.recordDelivery": _rule([Role.RESPONDER], Access.SELF),
    "Mutation.checkIn": _rule([Role.RESPONDER], Access.SELF),
    "Mutation.reportProblem": _rule([Role.RESPONDER], Access.SELF),
    # Signing in and out.
    "Mutation.requestSignInCode": {ANYONE: Access.PUBLIC},
    "Mutation.signInWithCode": {ANYONE: Access.PUBLIC},
    "Mutation.signOut": _rule(Role, Access.SELF),
    "Mutation.revokeToken": _rule(Role, Access.SELF, admin=Access.SCOPE),
}


def editors(actor: Actor, operation: str) -> Actor:
    """`actor` as only the roles the table grants `operation`: what they may edit is their
    place under those roles (a reviewer who is also a secretary edits their community only)."""
    rule = POLICY[operation]
    return replace(actor, bindings=tuple(b for b in actor.bindings if b.role.value in rule))


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

    def __init__(self, operation: str) -> None:
        super().__init__(f"请先登录 Sign in first: {operation} needs a bearer token")


def authorize(actor: Actor, operation: str) -> Access:
    """The access `actor` has to `operation`, or an error; denials are audited."""
    rule = POLICY.get(operation)
    if rule is None:
        audit("policy.missing", actor=actor.label, address=actor.address, operation=operation)
        raise _audited(Forbidden(operation))
    if ANYONE in rule:
        return rule[ANYONE]
    if not actor.authenticated:
        audit(
            "access.denied",
            actor=actor.label,
            address=actor.address,
            operation=operation,
            reason="not signed in",
        )
        raise _audited(Unauthenticated(operation))
    granted = [rule[role.value] for role in actor.roles if role.value in rule]
    if not granted:
        audit(
            "access.denied",
            actor=actor.label,
            address=actor.address,
            operation=operation,
            roles=sorted(r.value for r in actor.roles),
        )
        raise _audited(Forbidden(operation))
    return Access.SCOPE if Access.SCOPE in granted else granted[0]


def _audited(error: DomainError) -> DomainError:
    error.audited = True
    return error
