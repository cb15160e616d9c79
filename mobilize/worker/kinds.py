"""The registry of background jobs: each kind and the domain work it runs. Filled here, at
the edge, so `mobilize.jobs` depends on no domain and the domain on no worker."""

from __future__ import annotations

from collections.abc import Mapping

from mobilize.jobs import Work
from mobilize.mobilisation.switch import JOBS as MOBILISATION_JOBS

KINDS: Mapping[str, Work] = {**MOBILISATION_JOBS}
