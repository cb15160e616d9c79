"""Synthetic districts, written as bundles that `mobilize import` accepts."""

from mobilize.generate.presets import PRESETS, Preset
from mobilize.generate.synth import generate_district

__all__ = ["PRESETS", "Preset", "generate_district"]
