"""Label groups of the evaluation contract (DESIGN.md section 6, issue #3)."""

from __future__ import annotations

GUNSHOT = "gunshot"
FOREST = "forest"
"""``source`` of far-field rainforest recordings: reported apart from the urban target."""
HARD_NEGATIVES = frozenset(
    {"fireworks", "door", "knock", "impact", "clap", "hammer", "thunder", "construction", "glass"}
)
AMBIENCE = frozenset({"street", "traffic", "rain", "wind", "background", "indoor_other", "other"})
"""Labels whose detections count as false alarms per hour of audio."""
