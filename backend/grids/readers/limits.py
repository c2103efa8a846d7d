"""Size limits that protect the worker from oversized or hostile uploads.

They are shared by format sniffing (the file on disk) and zip handling (what a zip
expands to), so they live apart from both. Those modules read them as attributes of this
module (``limits.MAX_UNCOMPRESSED_BYTES``) rather than importing the values, so there is
one place to change or patch them.
"""

from __future__ import annotations

# A whole city's grids as GeoJSON are tens of MB; 1 GiB leaves room for very detailed
# files while stopping a zip bomb long before it hurts the worker.
MAX_UNCOMPRESSED_BYTES = 1 << 30
# A grid Shapefile zip has ~5 members; thousands means something else (or an attack on
# the central-directory parser).
MAX_ZIP_ENTRIES = 10_000
