"""The district bundle: the import format, its reader (validation), writer and loader."""

from mobilize.bundle.model import (
    Bundle,
    CommunityRecord,
    GridRecord,
    HouseholdTable,
    PairingRecord,
    ResponderRecord,
    StreetRecord,
    TeamRecord,
    UnitRecord,
)
from mobilize.bundle.problems import BundleInvalid, Problem
from mobilize.bundle.reader import read_bundle
from mobilize.bundle.writer import write_bundle

__all__ = [
    "Bundle",
    "BundleInvalid",
    "CommunityRecord",
    "GridRecord",
    "HouseholdTable",
    "PairingRecord",
    "Problem",
    "ResponderRecord",
    "StreetRecord",
    "TeamRecord",
    "UnitRecord",
    "read_bundle",
    "write_bundle",
]
