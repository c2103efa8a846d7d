"""Which part of the city a command-centre user acts on: their org unit.

Org units follow the grid codes (GB/T 30428.1): a district is a 6-digit code, a street 9
digits, a community 12. Command-centre staff (intake, shift lead, dispatcher) see and act on
what lies in the grids under their unit's code; without a unit they work city-wide (the city
centre). Admins see everything. Inspectors are scoped by their grid assignments instead
(backend.sync.scope), department handlers by what is dispatched to them (cases).
"""

from __future__ import annotations

import re
from typing import Final

from backend.accounts.models import Role, User

UNIT_CODE: Final = re.compile(r"^[0-9]{6}(?:[0-9]{3}){0,2}$")
COMMAND_CENTRE: Final = frozenset({Role.intake_operator, Role.shift_lead, Role.dispatcher})


def covers(user: User, grid_code: str | None) -> bool:
    """Whether a command-centre user (or an admin) may see and act on ``grid_code``."""
    role = Role(user.role)
    if role is Role.admin:
        return True
    if role not in COMMAND_CENTRE:
        return False
    if user.unit_code is None:
        return True
    return grid_code is not None and grid_code.startswith(user.unit_code)
