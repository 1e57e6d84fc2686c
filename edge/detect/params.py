"""What decides a detector's output besides its model and threshold, built in one place from a unit's config, so
``polewatch run``, ``detect --config`` and ``evaluate --config`` run the same rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edge.config import DetectConfig
from edge.detect.bursts import BurstParams
from edge.detect.texture import TextureParams
from edge.dsp.onset import GateParams


@dataclass(frozen=True)
class DetectorParams:
    gate: GateParams = field(default_factory=GateParams)
    bursts: BurstParams = field(default_factory=BurstParams)
    texture: TextureParams = field(default_factory=TextureParams)

    @classmethod
    def from_config(cls, cfg: DetectConfig) -> DetectorParams:
        return cls(
            gate=GateParams(rise_db=cfg.gate_rise_db, min_dbfs=cfg.gate_min_dbfs),
            bursts=BurstParams(gap_s=cfg.burst_gap_s, round_score=cfg.round_score),
            texture=TextureParams(max_s=cfg.texture_s, louder_db=cfg.texture_louder_db),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"gate": asdict(self.gate), "bursts": asdict(self.bursts), "texture": asdict(self.texture)}
