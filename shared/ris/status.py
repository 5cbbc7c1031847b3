"""The scheduled procedure step status machine, and the order status derived from its steps.

SCHEDULED → ARRIVED → IN_PROGRESS → COMPLETED / DISCONTINUED, and CANCELLED before the work
starts. A modality may start a step that was never marked arrived (SCHEDULED → IN_PROGRESS).
COMPLETED, DISCONTINUED and CANCELLED are final: nothing leaves them (PS3.4 F.7 for MPPS).
"""

from __future__ import annotations

from enum import StrEnum

from mekong.shared.ris.errors import IllegalTransition, UnknownCode


class Status(StrEnum):
    SCHEDULED = "SCHEDULED"
    ARRIVED = "ARRIVED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"
    CANCELLED = "CANCELLED"


FINAL = frozenset({Status.COMPLETED, Status.DISCONTINUED, Status.CANCELLED})
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset(
        {Status.ARRIVED, Status.IN_PROGRESS, Status.CANCELLED, Status.DISCONTINUED}
    ),
    Status.ARRIVED: frozenset({Status.IN_PROGRESS, Status.CANCELLED, Status.DISCONTINUED}),
    Status.IN_PROGRESS: frozenset({Status.COMPLETED, Status.DISCONTINUED}),
    Status.COMPLETED: frozenset(),
    Status.DISCONTINUED: frozenset(),
    Status.CANCELLED: frozenset(),
}
EDITABLE = frozenset({Status.SCHEDULED, Status.ARRIVED})  # details may still change (XO)


def parse_status(value: str, field: str = "status") -> Status:
    try:
        return Status(value.strip().upper().replace(" ", "_"))
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise UnknownCode(f"unknown status {value!r}; one of {allowed}", field) from None


def check_transition(current: Status, new: Status, what: str = "step") -> None:
    """Raise :class:`IllegalTransition` unless ``current → new`` is allowed."""
    if new in ALLOWED[current]:
        return
    if current in FINAL:
        reason = f"{current} is final"
    elif current == new:
        reason = f"it is already {current}"
    else:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing"
        reason = f"from {current} only {allowed} may follow"
    raise IllegalTransition(f"cannot move {what} from {current} to {new}: {reason}")


def order_status(steps: list[Status]) -> Status:
    """The order's status from its steps. While a step is open: IN_PROGRESS once any work
    began (a step in progress or already ended), else ARRIVED or SCHEDULED. When all are final:
    COMPLETED if any step completed, DISCONTINUED if any stopped, else CANCELLED."""
    active = [s for s in steps if s not in FINAL]
    if active:
        if Status.IN_PROGRESS in active or Status.COMPLETED in steps:
            return Status.IN_PROGRESS
        if Status.DISCONTINUED in steps:
            return Status.IN_PROGRESS
        return Status.ARRIVED if Status.ARRIVED in active else Status.SCHEDULED
    for status in (Status.COMPLETED, Status.DISCONTINUED):
        if status in steps:
            return status
    return Status.CANCELLED
