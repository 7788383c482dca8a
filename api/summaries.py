"""One line per event, in Chinese or English, for a record's history. A summary never holds
personal data (names, numbers, free text): it is shown to every reader alike."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

# Event name -> (Chinese, English); {field} takes the event's field, {area} the area's name.
SUMMARIES: dict[str, tuple[str, str]] = {
    "Resident.Registered": ("登记为外来人口，居住地{area}，{registered_on}起", "Registered, living in {area} from {registered_on}"),
    "Resident.MovedIntoSite": ("{effective_date}迁入{site}（{area}）", "Moved into {site} in {area} on {effective_date}"),
    "Resident.MovedToPrivateHousing": ("{effective_date}迁至{area}（{housing_kind}）", "Moved to private housing ({housing_kind}) in {area} on {effective_date}"),
    "Resident.StudyRecorded": ("{effective_date}起就读情况变更", "Study recorded from {effective_date}"),
    "Resident.DepartedDistrict": ("{effective_date}离开本区", "Left the district on {effective_date}"),
    "Resident.Returned": ("{effective_date}返回本区，居住地{area}", "Came back to the district, living in {area}, on {effective_date}"),
    "Resident.EmployerChanged": ("{effective_date}起更换工作单位", "Changed employer on {effective_date}"),
    "Resident.PermitApplied": ("{applied_on}申请居住证", "Applied for a residence permit on {applied_on}"),
    "Resident.PermitIssued": ("{issued_on}发放居住证，签注截止{endorsement_due}", "Residence permit issued on {issued_on}, endorsement due {endorsement_due}"),
    "Resident.PermitEndorsed": ("{endorsed_on}签注，下次截止{endorsement_due}", "Permit endorsed on {endorsed_on}, next due {endorsement_due}"),
    "Resident.PermitReinstated": ("{endorsed_on}补签后恢复居住证", "Permit reinstated by the endorsement of {endorsed_on}"),
    "Resident.PermitSuspended": ("签注逾期（{lapsed_on}），居住证暂停", "Permit suspended: endorsement lapsed on {lapsed_on}"),
    "Resident.PermitCancelled": ("{effective_date}注销居住证", "Permit cancelled on {effective_date}"),
    "Resident.JoinedCommittee": ("{joined_on}担任管理委员会委员", "Took a seat on a management committee on {joined_on}"),
    "Resident.IdentifiedAsActiveMember": ("{identified_on}确定为骨干", "Identified as an active member on {identified_on}"),
    "Resident.LeftCommittee": ("{left_on}卸任管理委员会委员", "Gave up a management committee seat on {left_on}"),
    "Resident.DependantRecorded": ("登记一名随迁家属（{relation}，{birth_year}年生）", "A dependant ({relation}, born {birth_year}) recorded"),
    "Resident.SchoolPlacementRequested": ("{requested_on}为随迁子女申请入学", "A school place requested for a dependant on {requested_on}"),
    "Resident.SchoolPlaced": ("{placed_on}随迁子女入学", "A dependant placed at school on {placed_on}"),
    "Resident.SchoolPlacementRefused": ("{refused_on}随迁子女入学申请未获批准", "A dependant refused a school place on {refused_on}"),
    "Resident.ServiceDelivered": ("{delivered_on}接受服务：{kind}", "Service delivered on {delivered_on}: {kind}"),
    "Resident.PersonalDataErased": ("个人信息已删除（依据：{legal_basis}）", "Personal data erased ({legal_basis})"),
    "HousingSite.Registered": ("登记集中居住点，床位{capacity}张，居住地{area}", "Housing site registered in {area} with {capacity} beds"),
    "HousingSite.OperatorChanged": ("{changed_on}起由{operator_name}运作", "Run by {operator_name} from {changed_on}"),
    "HousingSite.CapacityChanged": ("床位调整为{capacity}张", "Capacity changed to {capacity} beds"),
    "HousingSite.FacilitiesChanged": ("配套设施变更", "Facilities changed"),
    "HousingSite.CommunityCommitteeEstablished": ("{established_on}成立社区居委会", "Community committee established on {established_on}"),
    "HousingSite.SiteAssessed": ("{assessed_on}评估：实有{headcount}人，运作主体：{operator_status}", "Assessed on {assessed_on}: {headcount} people, operator: {operator_status}"),
    "HousingSite.PreparationApproved": ("{approved_on}批准成立社区筹备组", "Preparatory group approved on {approved_on}"),
    "HousingSite.ElectionHeld": ("{held_on}选举社区居委会，{seats}个席位", "Community committee elected on {held_on}: {seats} seats"),
    "HousingSite.CommunityMembersChanged": ("{changed_on}居委会成员变动", "Committee members changed on {changed_on}"),
    "HousingSite.TermEnded": ("{ended_on}居委会任期届满", "Committee term ended on {ended_on}"),
    "HousingSite.Closed": ("{closed_on}关闭", "Closed on {closed_on}"),
    "HousingSite.ResidentMovedIn": ("{effective_date}一名居民迁入", "A resident moved in on {effective_date}"),
    "HousingSite.ResidentMovedOut": ("{effective_date}一名居民迁出", "A resident moved out on {effective_date}"),
    "DisputeCase.Logged": ("登记纠纷（{category}），优先级：{priority}，发生于{occurred_on}", "Dispute logged ({category}, priority: {priority}) that arose on {occurred_on}"),
    "DisputeCase.Assigned": ("{assigned_on}分派", "Assigned on {assigned_on}"),
    "DisputeCase.NoteAdded": ("添加备注", "Note added"),
    "DisputeCase.MediationHeld": ("{held_on}进行调解", "Mediation held on {held_on}"),
    "DisputeCase.Escalated": ("上报至{to}", "Escalated to {to}"),
    "DisputeCase.Resolved": ("{resolved_on}解决：{outcome}", "Resolved on {resolved_on}: {outcome}"),
    "DisputeCase.Closed": ("结案", "Closed"),
    "DisputeCase.Reopened": ("重新打开，解决期限{resolution_due}", "Reopened, resolution due {resolution_due}"),
    "DisputeCase.CommitteeDecisionRecorded": ("记录管理委员会决定", "Committee decision recorded"),
    "DisputeCase.EscalatedForBreach": ("超过{breach}期限（{due_on}），自动上报", "Escalated: {breach} deadline {due_on} passed"),
    "DisputeCase.PersonalDataErased": ("当事人或案情所涉居民的个人信息已删除", "The personal data of a party, or of a resident the case names, was erased"),
    "ManagementCommittee.Established": ("{established_on}成立管理委员会", "Management committee established on {established_on}"),
    "ManagementCommittee.MemberAdded": ("增加委员", "Member added"),
    "ManagementCommittee.MemberRemoved": ("{left_on}委员离任", "A member left on {left_on}"),
    "ManagementCommittee.SeatVacated": ("{vacated_on}委员离开本区，席位空缺", "A member left the district on {vacated_on}: seat vacant"),
    "ManagementCommittee.SeatResumed": ("{resumed_on}委员返回本区，恢复席位", "A member came back on {resumed_on} and resumed their seat"),
    "ManagementCommittee.ActionAssigned": ("{assigned_on}会议布置任务，{due_on}前完成", "Action assigned on {assigned_on}, due {due_on}"),
    "ManagementCommittee.ActionCompleted": ("{done_on}任务完成", "Action done on {done_on}"),
    "ManagementCommittee.MeetingMissed": ("{month}未召开例会", "No meeting held in {month}"),
    "ActiveMember.Identified": ("{identified_on}确定为骨干", "Identified as an active member on {identified_on}"),
    "ActiveMember.Trained": ("{trained_on}参加培训：{course}", "Trained on {trained_on}: {course}"),
    "ActiveMember.Appointed": ("{appointed_on}担任{role}", "Appointed {role} on {appointed_on}"),
    "ActiveMember.RoleEnded": ("{ended_on}卸任{role}", "Stopped being {role} on {ended_on}"),
    "ActiveMember.EmployerLiaisonAgreed": ("{agreed_on}与工作单位（{employer}）协调工作时间", "Employer ({employer}) agreed on {agreed_on} that shifts allow the work"),
    "ActiveMember.Lost": ("{lost_on}骨干流失（{reason}）", "Active member lost on {lost_on} ({reason})"),
    "ActiveMember.PersonalDataErased": ("居民个人信息已删除，工作单位协调说明随之删除",
                                        "The resident's personal data was erased, and the employers' notes with it"),
    "ActiveMember.LiaisonNotesErased": ("工作单位协调说明提及的居民个人信息已删除，说明随之删除",
                                        "A resident the employers' notes named was erased, and the notes with them"),
    "ManagementCommittee.MeetingScheduled": ("安排{scheduled_on}会议", "Meeting scheduled for {scheduled_on}"),
    "ManagementCommittee.AgendaItemsAdded": ("会议议程增加事项", "Items added to a meeting's agenda"),
    "ManagementCommittee.MinutesRecorded": ("{held_on}会议纪要", "Minutes of the meeting of {held_on}"),
    "SubsidyProgram.Opened": ("设立{fiscal_year}年度补助项目，预算{budget}元", "Program opened for {fiscal_year} with a budget of {budget} yuan"),
    "SubsidyProgram.BudgetCommitted": ("承诺支出{amount}元", "Committed {amount} yuan"),
    "SubsidyProgram.CommitmentReleased": ("释放承诺{amount}元", "Released {amount} yuan"),
    "SubsidyProgram.PaymentRecorded": ("支付{amount}元", "Paid {amount} yuan"),
    "SubsidyApplication.Submitted": ("申请补助{amount}元（{mode}）", "Applied for {amount} yuan ({mode})"),
    "SubsidyApplication.ApprovalGiven": ("审批同意", "Approved"),
    "SubsidyApplication.PaymentScheduled": ("{approved_on}生效，安排支付", "Took effect on {approved_on}; payment scheduled"),
    "SubsidyApplication.Rejected": ("驳回", "Rejected"),
    "SubsidyApplication.PaymentRecorded": ("{paid_on}支付{amount}元", "Paid {amount} yuan on {paid_on}"),
    "SubsidyApplication.OutcomeVerified": ("{verified_on}验收成果", "Outcome verified on {verified_on}"),
    "SubsidyApplication.Revoked": ("撤销，追回{claw_back}元", "Revoked; {claw_back} yuan to be paid back"),
    "SubsidyApplication.JustificationErased": ("申请理由中的个人信息已删除", "Personal data in the justification erased"),
    "SubsidyApplication.TextsErased": ("申请材料中的个人信息已删除", "Personal data in the application's texts erased"),
    "Operator.Registered": ("登记运作主体（{operator_type}），所在地{area}", "Operator ({operator_type}) registered in {area}"),
    "Operator.SiteAssigned": ("{assigned_on}起运作一个集中居住点", "Took over running a housing site on {assigned_on}"),
    "Operator.SiteReleased": ("{released_on}不再运作一个集中居住点", "Stopped running a housing site on {released_on}"),
    "Operator.EmployeeLinked": ("{linked_on}登记一名本单位职工", "An employee linked on {linked_on}"),
    "Operator.EmployeeUnlinked": ("{unlinked_on}一名职工离职", "An employee unlinked on {unlinked_on}"),
    "Operator.YearlyReportFiled": ("{year}年度报告：收入{income_from_site}元", "Report for {year}: income {income_from_site} yuan"),
    "Operator.YearlyReportCorrected": ("更正{year}年度报告", "Report for {year} corrected"),
    "Operator.SanitationInspected": ("{inspected_on}环境卫生检查，得分{score}", "Sanitation inspected on {inspected_on}: score {score}"),
    "Operator.ContactChanged": ("{changed_on}起更换联系人", "A new contact person from {changed_on}"),
    "Operator.ContactErased": ("联系人个人信息已删除（依据：{legal_basis}）", "The contact person's personal data erased ({legal_basis})"),
    "Operator.FormerContactsErased": ("{replaced_before}前更换的原联系人个人信息已按保存期限删除",
                                      "Former contact persons replaced before {replaced_before} erased (retention)"),
    "SiteOperatorClaim.Claimed": ("居住点首次确定运作主体", "The site's operator was first assigned"),
    "SiteOperatorClaim.Taken": ("居住点重新确定运作主体", "The site was assigned to an operator again"),
    "SiteOperatorClaim.Released": ("居住点运作主体退出", "The site's operator released it"),
    "Pairing.Agreed": ("{agreed_on}结对共建（{partner_type}）", "Paired ({partner_type}) on {agreed_on}"),
    "Pairing.ContributionDelivered": ("{delivered_on}共建单位投入：{kind}", "The partner's contribution on {delivered_on}: {kind}"),
    "Pairing.Ended": ("{ended_on}结对结束", "Pairing ended on {ended_on}"),
}


# Fields whose value is a code: shown as the web catalogues' label for it ("kind.value"), in
# the reader's language. An event whose field means something else names its kind here.
LABELS: dict[str, str] = {
    "category": "category", "priority": "priority", "outcome": "outcome", "housing_kind": "housing",
    "operator_status": "operator_status", "operator_type": "operator_type", "mode": "mode",
    "partner_type": "partner_type", "relation": "dependant_relation", "legal_basis": "legal_basis",
    "to": "escalation", "breach": "breach",
}
EVENT_LABELS: dict[str, dict[str, str]] = {
    "Resident.ServiceDelivered": {"kind": "service_kind"},
    "Pairing.ContributionDelivered": {"kind": "contribution_kind"},
    "ActiveMember.Appointed": {"role": "active_role"},
    "ActiveMember.RoleEnded": {"role": "active_role"},
    "ActiveMember.Lost": {"reason": "loss_reason"},
}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _shown(value: Any) -> Any:
    """A field as a summary prints it: a day as its date, an amount as money (9,000.00)."""
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return value


# {site}: the housing site's name where the caller gives one (found by a review: an auditor could not
# tell which site a resident moved into), else these words.
A_SITE = ("集中居住点", "a housing site")


def site_namer(app: Any) -> Callable[[Any], str | None]:
    """A housing site's name by its id (None if there is none), each site read once per history."""
    from eventsourcing.application import AggregateNotFoundError

    from domain.sites import HousingSite

    names: dict[str, str | None] = {}

    def name(site_id: Any) -> str | None:
        key = str(site_id)
        if key not in names:
            try:
                site = app.repository.get(site_id)
            except AggregateNotFoundError:  # an id that names no site: the words instead
                site = None
            names[key] = site.name if isinstance(site, HousingSite) else None
        return names[key]

    return name


def summary(name: str, event: Any, lang: str, area_name: Callable[[str], str],
            site_name: Callable[[Any], str | None] | None = None) -> str:
    """The event in one line, in Chinese (``zh`` or ``zh-CN``) or English, its codes in words."""
    templates = SUMMARIES.get(name)
    if templates is None:
        return name
    from api.web.i18n import label  # the web package's catalogues (importing api.web at start would be a cycle)

    chinese = lang in ("zh", "zh-CN")
    fields = _Fields({k: _shown(v) for k, v in vars(event).items()
                      if isinstance(v, str | int | float | Decimal) or hasattr(v, "isoformat")})
    for key, kind in (LABELS | EVENT_LABELS.get(name, {})).items():
        if isinstance(fields.get(key), str):
            fields[key] = label("zh-CN" if chinese else "en", kind, fields[key])
    if "area" in fields:
        fields["area"] = area_name(str(fields["area"]))
    site_id = getattr(event, "site_id", None)
    fields["site"] = (site_name(site_id) if site_name is not None and site_id is not None else None) or (
        A_SITE[0] if chinese else A_SITE[1])
    return (templates[0] if chinese else templates[1]).format_map(fields)
