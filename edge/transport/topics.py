"""MQTT topic names of contract v1 (DESIGN.md section 4); every topic hangs off one prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "polewatch/v1"
UNIT_ID = re.compile(r"[a-z0-9-]{1,64}")


@dataclass(frozen=True)
class Topics:
    unit: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not UNIT_ID.fullmatch(self.unit):
            raise ValueError(f"unit id {self.unit!r} must match [a-z0-9-]{{1,64}}")
        if not self.prefix or self.prefix.endswith("/") or any(c in self.prefix for c in "+#"):
            raise ValueError(f"topic prefix {self.prefix!r} must be non-empty, without '+', '#' or a trailing '/'")

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.unit}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def media(self) -> str:
        return f"{self.base}/media"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def commands(self) -> str:
        """Subscription filter for every command addressed to this unit."""
        return f"{self.base}/cmd/+"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def reply(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/reply"

    @property
    def incident(self) -> str:
        return f"{self.prefix}/incident"
