"""Who calls: the name its images count against and its log lines carry, and what it may call
(service/auth/identity.py names it)."""

from __future__ import annotations

from dataclasses import dataclass

from service.auth.grants import EVERYTHING, Grants


@dataclass(frozen=True)
class Caller:
    name: str  # "tenant:team-a", "token:9f86d081884c", "ipv4:127.0.0.1:51234", ...
    grants: Grants = EVERYTHING


NOBODY = Caller("unknown")  # outside calls, and in calls refused before they were named
