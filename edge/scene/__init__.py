"""A synthetic, seeded street scene with gunshots and look-alike impulses, for ``polewatch demo`` and tests."""

from edge.scene.compose import Scene, SceneEvent, demo_scene, write_scene

__all__ = ["Scene", "SceneEvent", "demo_scene", "write_scene"]
