"""Peacetime: keeping the roster true between emergencies (leave, commitments, reporting in,
activities and the points they earn)."""
