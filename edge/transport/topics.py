"""MQTT topic names of contract v1 (DESIGN.md section 4); every topic hangs off one prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "polewatch/v1"
UNIT_ID = re.compile(r"[a-z0-9-]{1,64}")
RESERVED_UNIT_IDS = frozenset({"central", "incident", "reclassification"})
"""Names of topics and roles directly below the prefix: a unit with such an id could write where it must not."""


def check_prefix(prefix: str) -> None:
    if not prefix or prefix.endswith("/") or any(c in prefix for c in "+#"):
        raise ValueError(f"topic prefix {prefix!r} must be non-empty, without '+', '#' or a trailing '/'")


@dataclass(frozen=True)
class Topics:
    unit: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not UNIT_ID.fullmatch(self.unit):
            raise ValueError(f"unit id {self.unit!r} must match [a-z0-9-]{{1,64}}")
        if self.unit in RESERVED_UNIT_IDS:
            raise ValueError(f"unit id {self.unit!r} is reserved ({', '.join(sorted(RESERVED_UNIT_IDS))})")
        check_prefix(self.prefix)

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
    def reclassification(self) -> str:
        """Where this unit publishes reclassifications of its own events."""
        return f"{self.base}/reclassification"

    @property
    def incident(self) -> str:
        return f"{self.prefix}/incident"

    @property
    def review(self) -> str:
        """Where reviewers (central) publish reclassifications of any unit's events."""
        return f"{self.prefix}/reclassification"
