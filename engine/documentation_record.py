"""The documentation record of one direct procurement, as an auditor reads it.

The shipped process (``processes/direct_procurement``) writes the record in its
``build_record`` script task: the seven fields the law asks for at least
(Swedish LOU 19 a kap. 11 §; DOMAIN.md "Minimum record"), the same-kind spend
that decided whether a direct procurement was allowed, the declarations of
conflict of interest and the approvals. :func:`documentation_record` reads
that record and the rest of the case's data (the quotes, the archive step)
into a :class:`DocumentationRecord`: labelled, in the order the law lists
them, with the deviations from the organisation's rules and their
justifications worked out. Labels come in English, Swedish and Finnish as data
(:data:`LANGUAGES`), so that a page, a PDF and a CSV label the same field the
same way without a web framework.

It reads one case (its workflow and its task rows): lists and reports read the
reporting projection instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from .errors import NotFoundError
from .models import HumanTask, ProcessInstance, User
from .runtime import get_instance, instance_data

DIRECT_PROCUREMENT = "direct_procurement"
LANGUAGES = ("en", "sv", "fi")

Label = Mapping[str, str]


def label_text(label: Label, language: str) -> str:
    """Return *label* in *language*, or in English when it has no such translation."""
    return label.get(language) or label["en"]


class NotADirectProcurementError(NotFoundError):
    """The case is of another process: only direct procurements have a documentation record."""

    def __init__(self, instance_id: int, process_id: str) -> None:
        super().__init__(f"Case {instance_id} is a {process_id!r} case, not a direct procurement")
        self.instance_id = instance_id
        self.process_id = process_id


class NoRecordYetError(NotFoundError):
    """The direct procurement has not reached the step that produces its record (or never will)."""

    def __init__(self, instance_id: int, *, stopped: bool) -> None:
        reason = "it stopped before quotes were asked" if stopped else "it has not got that far yet"
        super().__init__(f"Case {instance_id} has no documentation record: {reason}")
        self.instance_id = instance_id
        self.stopped = stopped


# -- what a record holds -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordValue:
    """One labelled value of the record.

    ``kind`` says how to show ``value``: ``text``, ``money`` (a ``Decimal`` in
    the record's currency), ``date``, ``date-time`` (ISO text), ``count``,
    ``months`` or ``choice`` (a code whose label is in ``choices``). ``None``
    is an empty value; ``required`` says whether the record is incomplete without it.
    """

    key: str
    label: Label
    value: Any
    kind: str = "text"
    required: bool = True
    choices: Mapping[str, Label] | None = None

    @property
    def missing(self) -> bool:
        """Whether a required value is empty."""
        return self.required and self.value in (None, "")


@dataclass(frozen=True)
class MinimumField:
    """One of the law's seven minimum fields, numbered as the law lists them, with its parts."""

    number: int
    key: str
    label: Label
    values: tuple[RecordValue, ...]

    @property
    def complete(self) -> bool:
        """Whether every required part has a value."""
        return not any(v.missing for v in self.values)


@dataclass(frozen=True)
class SupplierAsked:
    """A supplier asked for a quote, and what came of it (``None``: no quote from it)."""

    name: str
    org_number: str
    price: Decimal | None
    compliant: bool | None
    score: Decimal | None
    chosen: bool

    @property
    def tendered(self) -> bool:
        """Whether a quote from this supplier was registered."""
        return self.price is not None


@dataclass(frozen=True)
class SpendPart:
    """One part of the same-kind spend: an earlier case in Procflow, or what was declared outside it."""

    value: Decimal
    instance_id: int | None = None
    subject: str | None = None
    supplier: str | None = None


@dataclass(frozen=True)
class SameKindSpend:
    """Purchases of the same kind in the fiscal year, summed with this one against the limit."""

    cpv_group: str
    fiscal_year: int | None
    cases: tuple[SpendPart, ...]
    in_procflow: Decimal
    declared_outside: Decimal
    total: Decimal
    this_purchase: Decimal | None
    aggregated_value: Decimal | None
    limit: Decimal | None
    utility_activity: bool

    @property
    def within_limit(self) -> bool | None:
        """Whether this purchase with the same-kind spend stays under the direct-procurement limit."""
        if self.aggregated_value is None or self.limit is None:
            return None
        return self.aggregated_value < self.limit


@dataclass(frozen=True)
class Deviation:
    """Where the case departs from the organisation's rules, and the justification it recorded.

    ``justification_expected``: the process asks for one (fewer suppliers asked
    than the rules require); a deviation that nobody could prevent (fewer
    tenders than asked for) is recorded without one.
    """

    key: str
    label: Label
    justification: str | None
    justification_expected: bool

    @property
    def unjustified(self) -> bool:
        """Whether a justification the process asks for is missing."""
        return self.justification_expected and not self.justification


@dataclass(frozen=True)
class Declaration:
    """A written declaration: a participant's on conflict of interest, or an approver's or reviewer's.

    ``role`` is ``participant``, ``approver`` or ``quality_reviewer``; ``user``
    the username (``None`` when the task row that says who is gone) and
    ``name`` how they are shown. ``decision`` is the approver's (approved or
    not) and ``level`` the approval level they decided at.
    """

    role: str
    user: str | None
    name: str | None
    has_conflict: bool
    details: str
    level: str | None = None
    decided_at: dt.datetime | None = None


@dataclass(frozen=True)
class DocumentationRecord:
    """The documentation record of one direct procurement (see the module's docstring)."""

    instance_id: int
    title: str
    status: str
    outcome: str
    outcome_reason: str
    decided_on: dt.date | None
    currency: str
    requester: str | None
    requester_name: str | None
    minimum_fields: tuple[MinimumField, ...]
    suppliers: tuple[SupplierAsked, ...]
    same_kind_spend: SameKindSpend | None
    deviations: tuple[Deviation, ...]
    declarations: tuple[Declaration, ...]
    approvals: tuple[Declaration, ...]
    approved: bool | None
    approval_comment: str
    documentation_required: bool
    documentation_due: dt.date | None
    documentation_complete: bool
    archive_reference: str | None

    @property
    def complete(self) -> bool:
        """Whether every minimum field has its required parts."""
        return all(f.complete for f in self.minimum_fields)

    @property
    def supplier_name(self) -> str | None:
        """The chosen supplier's name, if one was chosen."""
        return next((s.name for s in self.suppliers if s.chosen), None) or self.value_of("winner_name")

    def value_of(self, key: str) -> Any:
        """Return the value of the minimum-field part *key* (``winner_name``, ``estimated_value``...)."""
        return next((v.value for f in self.minimum_fields for v in f.values if v.key == key), None)

    def days_left(self, today: dt.date) -> int | None:
        """Days left of the documentation period on *today* (negative: overdue); ``None`` when not due."""
        if not self.documentation_required or self.documentation_complete or self.documentation_due is None:
            return None
        return (self.documentation_due - today).days


# -- labels ----------------------------------------------------------------------------------------

LABELS: dict[str, Label] = {
    # The seven minimum fields.
    "buyer": {"en": "Contracting authority", "sv": "Upphandlande myndighet", "fi": "Hankintayksikkö"},
    "object": {"en": "Object of the procurement", "sv": "Vad som har upphandlats", "fi": "Hankinnan kohde"},
    "competition": {
        "en": "How competition was sought",
        "sv": "Hur konkurrensen togs till vara",
        "fi": "Miten kilpailu järjestettiin",
    },
    "suppliers_and_tenders": {
        "en": "Suppliers asked and tenders received",
        "sv": "Tillfrågade leverantörer och inkomna anbud",
        "fi": "Pyydetyt toimittajat ja saadut tarjoukset",
    },
    "winner": {
        "en": "Supplier chosen and main reason",
        "sv": "Vald leverantör och främsta skälet",
        "fi": "Valittu toimittaja ja pääasiallinen peruste",
    },
    "value": {"en": "Estimated value", "sv": "Uppskattat värde", "fi": "Arvioitu arvo"},
    "period": {
        "en": "Delivery time or contract period",
        "sv": "Leveranstid eller avtalstid",
        "fi": "Toimitusaika tai sopimuskausi",
    },
    # Their parts.
    "buyer_name": {"en": "Name", "sv": "Namn", "fi": "Nimi"},
    "buyer_org_number": {"en": "Organisation number", "sv": "Organisationsnummer", "fi": "Y-tunnus"},
    "object_text": {"en": "Purchase", "sv": "Inköp", "fi": "Hankinta"},
    "cpv_code": {"en": "CPV code", "sv": "CPV-kod", "fi": "CPV-koodi"},
    "how_competition_was_sought": {"en": "Method", "sv": "Metod", "fi": "Menettely"},
    "quotes_requested_on": {
        "en": "Quotes requested on",
        "sv": "Offertförfrågan skickad",
        "fi": "Tarjouspyyntö lähetetty",
    },
    "quote_deadline": {"en": "Quote deadline", "sv": "Sista dag för offerter", "fi": "Tarjousten määräaika"},
    "suppliers_asked_count": {
        "en": "Suppliers asked",
        "sv": "Tillfrågade leverantörer",
        "fi": "Pyydetyt toimittajat",
    },
    "tenders_received": {"en": "Tenders received", "sv": "Inkomna anbud", "fi": "Saadut tarjoukset"},
    "quotes_required": {
        "en": "Quotes the rules require",
        "sv": "Offerter som riktlinjerna kräver",
        "fi": "Ohjeen vaatimat tarjoukset",
    },
    "winner_name": {"en": "Supplier", "sv": "Leverantör", "fi": "Toimittaja"},
    "winner_org_number": {"en": "Organisation number", "sv": "Organisationsnummer", "fi": "Y-tunnus"},
    "main_reason": {"en": "Main reason", "sv": "Främsta skälet", "fi": "Pääasiallinen peruste"},
    "estimated_value": {
        "en": "Estimated value excl. VAT",
        "sv": "Uppskattat värde exkl. moms",
        "fi": "Arvioitu arvo ilman arvonlisäveroa",
    },
    "contract_value": {
        "en": "Contract value excl. VAT",
        "sv": "Kontraktsvärde exkl. moms",
        "fi": "Sopimuksen arvo ilman arvonlisäveroa",
    },
    "delivery_or_contract_period": {
        "en": "Delivery time or contract period",
        "sv": "Leveranstid eller avtalstid",
        "fi": "Toimitusaika tai sopimuskausi",
    },
    "contract_period_months": {"en": "Contract period", "sv": "Avtalstid", "fi": "Sopimuskausi"},
    "option_months": {"en": "Options", "sv": "Optioner", "fi": "Optiot"},
    # Deviations.
    "fewer_suppliers_asked": {
        "en": "Fewer suppliers asked than the rules require",
        "sv": "Färre leverantörer tillfrågade än riktlinjerna kräver",
        "fi": "Tarjousta pyydetty ohjeen vaatimaa harvemmalta toimittajalta",
    },
    "fewer_tenders": {
        "en": "Fewer tenders received than the rules require",
        "sv": "Färre anbud inkomna än riktlinjerna kräver",
        "fi": "Tarjouksia saatu ohjeen vaatimaa vähemmän",
    },
    "not_best_scored": {
        "en": "The chosen quote is not the best-scored compliant one",
        "sv": "Den valda offerten är inte den godtagbara offerten med bäst poäng",
        "fi": "Valittu tarjous ei ole parhaat pisteet saanut hyväksyttävä tarjous",
    },
    "price_above_estimate": {
        "en": "The contract value is above the estimate (the limit was checked again at that price)",
        "sv": "Kontraktsvärdet överstiger uppskattningen (gränsen prövades igen vid det priset)",
        "fi": "Sopimuksen arvo ylittää arvion (raja tarkistettiin uudelleen sillä hinnalla)",
    },
    "participant_conflict": {
        "en": "A participant declared a conflict of interest and was replaced",
        "sv": "En deltagare anmälde jäv och ersattes",
        "fi": "Osallistuja ilmoitti esteellisyydestä ja hänet korvattiin",
    },
    "approver_conflict": {
        "en": "An approver declared a conflict of interest; the next level decided",
        "sv": "En godkännare anmälde jäv; nästa nivå beslutade",
        "fi": "Hyväksyjä ilmoitti esteellisyydestä; seuraava taso päätti",
    },
    "documentation_overdue": {
        "en": "The documentation was not complete within the time allowed",
        "sv": "Dokumentationen var inte klar inom föreskriven tid",
        "fi": "Dokumentaatio ei valmistunut määräajassa",
    },
}

CHOICES: dict[str, dict[str, Label]] = {
    "how_competition_was_sought": {
        "written_quotation_requests": {
            "en": "Written requests for quotation",
            "sv": "Skriftlig offertförfrågan",
            "fi": "Kirjallinen tarjouspyyntö",
        },
    },
    "outcome": {
        "ordered": {"en": "Ordered", "sv": "Beställd", "fi": "Tilattu"},
        "cancelled": {"en": "Cancelled", "sv": "Avbruten", "fi": "Keskeytetty"},
        "not_approved": {"en": "Not approved", "sv": "Inte godkänd", "fi": "Ei hyväksytty"},
        "open": {"en": "In progress", "sv": "Pågår", "fi": "Kesken"},
    },
    "role": {
        "participant": {"en": "Participant", "sv": "Deltagare", "fi": "Osallistuja"},
        "approver": {"en": "Approver", "sv": "Godkännare", "fi": "Hyväksyjä"},
        "quality_reviewer": {"en": "Quality reviewer", "sv": "Kvalitetsgranskare", "fi": "Laadun tarkastaja"},
    },
    "approver_level": {
        "unit_head": {"en": "Unit head", "sv": "Enhetschef", "fi": "Yksikön päällikkö"},
        "area_head": {"en": "Area head", "sv": "Områdeschef", "fi": "Aluepäällikkö"},
        "finance_head": {"en": "Finance head", "sv": "Ekonomichef", "fi": "Talousjohtaja"},
        "director": {"en": "Director", "sv": "Direktör", "fi": "Johtaja"},
    },
}


def choice_text(group: str, code: str | None, language: str) -> str:
    """Return the label of *code* among the :data:`CHOICES` of *group*, or the code as it is."""
    if not code:
        return ""
    label = CHOICES.get(group, {}).get(code)
    return label_text(label, language) if label else code


# -- reading a case --------------------------------------------------------------------------------


def documentation_record(
    session: so.Session, instance_id: int, *, organisation_id: int, today: dt.date
) -> DocumentationRecord:
    """Return the documentation record of direct procurement *instance_id* of *organisation_id*.

    *today* decides whether an unfinished documentation is overdue. Reads the
    one case's workflow (restored from the database) and its task rows.

    :raises NotFoundError: no such case in the organisation.
    :raises NotADirectProcurementError: the case is of another process.
    :raises NoRecordYetError: the case has not produced its record (yet).
    """
    instance = get_instance(session, instance_id, organisation_id=organisation_id)
    if instance.process_id != DIRECT_PROCUREMENT:
        raise NotADirectProcurementError(instance.id, instance.process_id)
    data = instance_data(session, instance)
    if not isinstance(data.get("documentation_record"), Mapping):
        stopped = instance.status in ("completed", "cancelled") or data.get("procedure") not in (
            None,
            "direct",
        )
        raise NoRecordYetError(instance.id, stopped=stopped)
    return record_from_data(
        instance,
        data,
        decided_by=_deciders(session, instance.id),
        names=_names(session, _usernames(data)),
        today=today,
    )


def _deciders(session: so.Session, instance_id: int) -> dict[str, list[HumanTask]]:
    """The completed approval and quality-review tasks of the case, oldest first, by BPMN id."""
    rows = session.scalars(
        sa.select(HumanTask)
        .where(
            HumanTask.instance_id == instance_id,
            HumanTask.bpmn_id.in_(("approve", "quality_review")),
            HumanTask.completed_at.is_not(None),
        )
        .options(so.joinedload(HumanTask.completed_by))
        .order_by(HumanTask.completed_at, HumanTask.id)
    )
    found: dict[str, list[HumanTask]] = {"approve": [], "quality_review": []}
    for row in rows:
        found[row.bpmn_id].append(row)
    return found


def _usernames(data: Mapping[str, Any]) -> set[str]:
    record = data["documentation_record"]
    names = {str(d.get("participant")) for d in _rows(record.get("conflict_of_interest_declarations"))}
    if record.get("requester"):
        names.add(str(record["requester"]))
    return names


def _names(session: so.Session, usernames: set[str]) -> dict[str, str]:
    if not usernames:
        return {}
    rows = session.execute(
        sa.select(User.username, User.display_name).where(User.username.in_(sorted(usernames)))
    )
    return {username: display or username for username, display in rows}


def record_from_data(
    instance: ProcessInstance,
    data: Mapping[str, Any],
    *,
    decided_by: Mapping[str, Sequence[HumanTask]],
    names: Mapping[str, str],
    today: dt.date,
) -> DocumentationRecord:
    """Build the record of *instance* from its *data* (as :func:`engine.instance_data` gives it).

    *decided_by* holds the completed ``approve`` and ``quality_review`` task
    rows in the order they were completed; *names* display names by username.
    """
    record: Mapping[str, Any] = data["documentation_record"]
    currency = str(record.get("currency") or data.get("currency") or "")
    suppliers = _suppliers(record, data)
    approvals = _approvals(record, decided_by)
    declarations = tuple(
        Declaration(
            role="participant",
            user=str(d.get("participant")),
            name=names.get(str(d.get("participant"))),
            has_conflict=bool(d.get("has_conflict")),
            details=str(d.get("details") or ""),
        )
        for d in _rows(record.get("conflict_of_interest_declarations"))
    )
    documentation_required = data.get("documentation_required") is True
    documentation_due = _date(data.get("documentation_due"))
    documentation_complete = data.get("documentation_complete") is True
    requester = record.get("requester")
    return DocumentationRecord(
        instance_id=instance.id,
        # The purchase's subject: an instance's own title is often just the process's name.
        title=str(record.get("object") or instance.title or ""),
        status=instance.status,
        outcome=str(record.get("outcome") or "open"),
        outcome_reason=str(record.get("outcome_reason") or ""),
        decided_on=_date(record.get("decided_on")),
        currency=currency,
        requester=str(requester) if requester else None,
        requester_name=names.get(str(requester)) if requester else None,
        minimum_fields=_minimum_fields(record),
        suppliers=suppliers,
        same_kind_spend=_same_kind_spend(record),
        deviations=_deviations(
            record,
            data,
            suppliers,
            declarations,
            approvals,
            overdue=documentation_required
            and not documentation_complete
            and documentation_due is not None
            and documentation_due < today,
        ),
        declarations=declarations,
        approvals=approvals,
        approved=data.get("approved") if isinstance(data.get("approved"), bool) else None,
        approval_comment=str(data.get("approval_comment") or ""),
        documentation_required=documentation_required,
        documentation_due=documentation_due,
        documentation_complete=documentation_complete,
        archive_reference=str(data["archive_reference"]) if data.get("archive_reference") else None,
    )


def _value(
    key: str, value: Any, kind: str = "text", *, required: bool = True, label: str | None = None
) -> RecordValue:
    return RecordValue(
        key=key,
        label=LABELS[label or key],
        value=_amount(value) if kind == "money" else value,
        kind=kind,
        required=required,
        choices=CHOICES.get(key) if kind == "choice" else None,
    )


def _minimum_fields(record: Mapping[str, Any]) -> tuple[MinimumField, ...]:
    chosen = record.get("winner_name") is not None
    ordered = record.get("outcome") == "ordered"
    fields = [
        (
            "buyer",
            [
                _value("buyer_name", record.get("buyer_name")),
                _value("buyer_org_number", record.get("buyer_org_number")),
            ],
        ),
        (
            "object",
            [
                _value("object", record.get("object"), label="object_text"),
                _value("cpv_code", record.get("cpv_code")),
            ],
        ),
        (
            "competition",
            [
                _value("how_competition_was_sought", record.get("how_competition_was_sought"), "choice"),
                _value("quotes_requested_on", record.get("quotes_requested_on"), "date"),
                _value("quote_deadline", record.get("quote_deadline"), "date-time"),
            ],
        ),
        (
            "suppliers_and_tenders",
            [
                _value("suppliers_asked_count", record.get("suppliers_asked_count"), "count"),
                _value("tenders_received", record.get("tenders_received"), "count"),
                _value("quotes_required", record.get("quotes_required"), "count", required=False),
            ],
        ),
        (
            "winner",
            [
                _value("winner_name", record.get("winner_name"), required=chosen),
                _value("winner_org_number", record.get("winner_org_number"), required=chosen),
                _value("main_reason", record.get("main_reason")),
            ],
        ),
        (
            "value",
            [
                _value("estimated_value", record.get("estimated_value"), "money"),
                _value("contract_value", record.get("contract_value"), "money", required=chosen),
            ],
        ),
        (
            "period",
            [
                _value(
                    "delivery_or_contract_period", record.get("delivery_or_contract_period"), required=ordered
                ),
                _value(
                    "contract_period_months", record.get("contract_period_months"), "months", required=False
                ),
                _value("option_months", record.get("option_months"), "months", required=False),
            ],
        ),
    ]
    return tuple(
        MinimumField(number=number, key=key, label=LABELS[key], values=tuple(values))
        for number, (key, values) in enumerate(fields, start=1)
    )


def _suppliers(record: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[SupplierAsked, ...]:
    quotes = {str(q.get("org_number")): q for q in _rows(data.get("quotes"))}
    winner = record.get("winner_org_number")
    found = []
    for asked in _rows(record.get("suppliers_asked")):
        org_number = str(asked.get("org_number") or "")
        quote = quotes.get(org_number)
        found.append(
            SupplierAsked(
                name=str(asked.get("name") or ""),
                org_number=org_number,
                price=_amount(quote.get("price")) if quote else None,
                compliant=bool(quote.get("compliant")) if quote else None,
                score=_amount(quote.get("score")) if quote else None,
                chosen=winner is not None and org_number == winner,
            )
        )
    return tuple(found)


def _same_kind_spend(record: Mapping[str, Any]) -> SameKindSpend | None:
    spend = record.get("same_kind_spend")
    if not isinstance(spend, Mapping):
        return None
    this_purchase = _amount(record.get("contract_value")) or _amount(record.get("estimated_value"))
    return SameKindSpend(
        cpv_group=str(spend.get("cpv_group") or ""),
        fiscal_year=int(spend["fiscal_year"]) if spend.get("fiscal_year") is not None else None,
        cases=tuple(
            SpendPart(
                value=_amount(c.get("value")) or Decimal(0),
                instance_id=int(c["instance_id"]) if c.get("instance_id") is not None else None,
                subject=c.get("subject"),
                supplier=c.get("supplier"),
            )
            for c in _rows(spend.get("cases"))
        ),
        in_procflow=_amount(spend.get("in_procflow")) or Decimal(0),
        declared_outside=_amount(spend.get("declared_outside")) or Decimal(0),
        total=_amount(spend.get("total")) or Decimal(0),
        this_purchase=this_purchase,
        aggregated_value=_amount(record.get("aggregated_value")),
        limit=_amount(record.get("direct_procurement_limit")),
        utility_activity=record.get("utility_activity") is True,
    )


def _approvals(
    record: Mapping[str, Any], decided_by: Mapping[str, Sequence[HumanTask]]
) -> tuple[Declaration, ...]:
    # The process appends a declaration as each approval or review task completes, so the
    # n-th declaration of a role is the n-th completed task of that role.
    tasks = {
        "approver": list(decided_by.get("approve", ())),
        "quality_reviewer": list(decided_by.get("quality_review", ())),
    }
    found = []
    for d in _rows(record.get("approval_declarations")):
        role = str(d.get("role") or "approver")
        task = tasks.get(role, []).pop(0) if tasks.get(role) else None
        user = task.completed_by if task is not None else None
        found.append(
            Declaration(
                role=role,
                user=user.username if user else None,
                name=(user.display_name or user.username) if user else None,
                has_conflict=bool(d.get("has_conflict")),
                details=str(d.get("details") or ""),
                level=str(d["level"]) if d.get("level") else None,
                decided_at=task.completed_at if task is not None else None,
            )
        )
    return tuple(found)


def _deviations(
    record: Mapping[str, Any],
    data: Mapping[str, Any],
    suppliers: Sequence[SupplierAsked],
    declarations: Sequence[Declaration],
    approvals: Sequence[Declaration],
    *,
    overdue: bool,
) -> tuple[Deviation, ...]:
    found: list[Deviation] = []

    def add(key: str, justification: str | None, *, expected: bool) -> None:
        found.append(Deviation(key, LABELS[key], justification or None, expected))

    required = _int(record.get("quotes_required"))
    asked = _int(record.get("suppliers_asked_count"))
    received = _int(record.get("tenders_received"))
    if required is not None and asked is not None and asked < required:
        add(
            "fewer_suppliers_asked",
            str(record.get("fewer_quotes_justification") or "").strip(),
            expected=True,
        )
    if required is not None and received is not None and received < required:
        add("fewer_tenders", None, expected=False)
    scored = [s for s in suppliers if s.compliant and s.score is not None]
    chosen = next((s for s in suppliers if s.chosen), None)
    if (
        chosen is not None
        and chosen.score is not None
        and scored
        and chosen.score < max(s.score or 0 for s in scored)
    ):
        add("not_best_scored", str(record.get("main_reason") or "").strip(), expected=True)
    estimate, price = _amount(record.get("estimated_value")), _amount(record.get("contract_value"))
    if estimate is not None and price is not None and price > estimate:
        add("price_above_estimate", None, expected=False)
    for d in declarations:
        if d.has_conflict:
            add("participant_conflict", f"{d.name or d.user}: {d.details}", expected=True)
    for d in approvals:
        if d.has_conflict:
            add("approver_conflict", f"{d.name or d.user or ''}: {d.details}".lstrip(": "), expected=True)
    if overdue:
        add("documentation_overdue", None, expected=False)
    return tuple(found)


def _rows(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _int(value: Any) -> int | None:
    amount = _amount(value)
    return int(amount) if amount is not None else None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
