"""Every read model by name, for the runner, ``/readyz`` and ``projections rebuild``."""

from __future__ import annotations

from projections.base import SqlProjection
from projections.residents import ResidentsProjection
from projections.site_occupancy import SiteOccupancyProjection

PROJECTIONS: dict[str, type[SqlProjection]] = {
    cls.name: cls for cls in (ResidentsProjection, SiteOccupancyProjection)
}
