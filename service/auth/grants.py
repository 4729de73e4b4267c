"""Which models a caller may call: the grants its credential carries (a token's `models=`, a JWT's scope, a
certificate's entry).

A grant is one of:

- `*`: every model, called in any way (what a token without `models=`, or a gateway without authentication, gives);
- `MODEL`: the model as configured (its traffic split or pinned version), or any version, version label or variant
  of it the caller names, with its configured signature;
- `MODEL/*`: the same, and any signature of the servable;
- `MODEL/CHOICE`: only that variant, version label or version number of the model, with its configured signature;
  a call that names none is routed among the variants the caller may use.

No gRPC and no configuration here: the router asks `Grants` about the route it chose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANY = "*"
# Model names are the config's; a grant names one, so it is as long and has no spaces, commas or slashes.
MAX_GRANT_CHARS = 256


@dataclass(frozen=True)
class Grant:
    model: str  # a configured model's name, or ANY
    choice: str = ""  # "": as configured; ANY: any signature too; else a variant, version label or version


@dataclass(frozen=True)
class RouteFacts:
    """What a grant is checked against: the model a call reaches and how it is called there."""

    model: str
    variant: str  # the variant of the model's split, "" without one
    version: int | None
    version_label: str
    configured_signature: bool  # the call runs the signature the configuration names for it


def parse_grant(text: str) -> Grant:
    """`*`, `MODEL`, `MODEL/*` or `MODEL/CHOICE`; ValueError says what is accepted."""
    accepted = "use *, MODEL, MODEL/* or MODEL/VARIANT-LABEL-OR-VERSION"
    if not text or len(text) > MAX_GRANT_CHARS or any(c.isspace() or c == "," for c in text):
        raise ValueError(f"{text!r} is not a grant; {accepted}")
    if text == ANY:
        return Grant(ANY, ANY)
    model, slash, choice = text.partition("/")
    if not model or model == ANY or (slash and not choice) or "/" in choice:
        raise ValueError(f"{text!r} is not a grant; {accepted}")
    return Grant(model, choice)


@dataclass(frozen=True)
class Grants:
    items: tuple[Grant, ...]

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Grants:
        return cls(tuple(parse_grant(text) for text in texts))

    def __str__(self) -> str:
        return ",".join(
            grant.model if not grant.choice or grant.model == ANY else f"{grant.model}/{grant.choice}"
            for grant in self.items
        )

    def _of(self, model: str) -> list[Grant]:
        return [grant for grant in self.items if grant.model in (model, ANY)]

    def may_use(self, model: str) -> bool:
        """Whether any call to `model` is allowed: what ListModels lists."""
        return bool(self._of(model))

    def may_choose(self, model: str, choices: Iterable[str]) -> bool:
        """Whether a call that names none of them may reach `model` as one of `choices` (a variant's name, its
        version label, its version): how a split is narrowed to what the caller may use."""
        granted = self._of(model)
        names = set(choices)
        return any(grant.choice in ("", ANY) or grant.choice in names for grant in granted)

    def allows(self, route: RouteFacts) -> bool:
        for grant in self._of(route.model):
            if grant.choice == ANY:
                return True
            if not route.configured_signature:
                continue
            if grant.choice == "":
                return True
            named = {route.variant, route.version_label, "" if route.version is None else str(route.version)}
            if grant.choice in named - {""}:
                return True
        return False


EVERYTHING = Grants((Grant(ANY, ANY),))
