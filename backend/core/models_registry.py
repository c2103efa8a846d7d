"""Imports every domain's models so ``Base.metadata`` is complete (Alembic, tests)."""

from backend.accounts import models as accounts_models  # noqa: F401
from backend.core.db import Base
from backend.grids import models as grids_models  # noqa: F401

metadata = Base.metadata
