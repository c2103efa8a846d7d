"""Imports every domain's models so ``Base.metadata`` is complete (Alembic, tests)."""

from backend.accounts import models as accounts_models  # noqa: F401
from backend.audit import models as audit_models  # noqa: F401
from backend.cases import models as cases_models  # noqa: F401
from backend.categories import models as categories_models  # noqa: F401
from backend.core.db import Base
from backend.devices import models as devices_models  # noqa: F401
from backend.grids import models as grids_models  # noqa: F401
from backend.jobs import models as jobs_models  # noqa: F401
from backend.media import models as media_models  # noqa: F401
from backend.reports import models as reports_models  # noqa: F401
from backend.sync import models as sync_models  # noqa: F401
from backend.worktime import models as worktime_models  # noqa: F401

metadata = Base.metadata
