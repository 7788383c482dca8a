"""Every read model by name, for the runner, ``/readyz`` and ``projections rebuild``."""

from __future__ import annotations

from projections.active_members import ActiveMembersProjection
from projections.base import SqlProjection
from projections.cobuilding import CobuildingProjection
from projections.committees import CommitteeAgendasProjection
from projections.disputes import CaseDetailsProjection, OpenCasesProjection
from projections.operators import OperatorsProjection
from projections.reporting_delays import ReportingDelaysProjection
from projections.residence_periods import ResidencePeriodsProjection
from projections.residents import ResidentsProjection
from projections.services import ServicesProjection
from projections.site_occupancy import SiteOccupancyProjection
from projections.statistics import StatisticsProjection
from projections.subsidy_ledger import SubsidyLedgerProjection

PROJECTIONS: dict[str, type[SqlProjection]] = {
    cls.name: cls
    for cls in (
        ResidentsProjection,
        SiteOccupancyProjection,
        OpenCasesProjection,
        CaseDetailsProjection,
        CommitteeAgendasProjection,
        StatisticsProjection,
        SubsidyLedgerProjection,
        ResidencePeriodsProjection,
        ReportingDelaysProjection,
        ActiveMembersProjection,
        ServicesProjection,
        OperatorsProjection,
        CobuildingProjection,
    )
}
