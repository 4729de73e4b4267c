"""What the code that serves one call knows about it, without being handed it: its request id and its route.

Context variables: set by the interceptors when a call starts, inherited by every task and worker thread the call
starts, read by logging, metrics and the backend client.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from service.auth.caller import NOBODY, Caller


@dataclass
class CallInfo:
    """Filled in as the call goes: the model and variant it was routed to (the last item's, for a stream)."""

    model: str = ""
    variant: str = ""


REQUEST_ID_KEY = "x-request-id"

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
call_info: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("call_info", default=None)
# Who calls (service/auth/identity.py): whom its images count against (service/admission.py), what it may call.
caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller", default=NOBODY)


def note_route(model: str, variant: str) -> None:
    """Records where the current call was routed, for its metrics."""
    info = call_info.get()
    if info is not None:
        info.model, info.variant = model, variant
