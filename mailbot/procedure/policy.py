"""The settings the procedure reads, as plain values (the composition root makes them)."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.vocabulary import StaffMember


@dataclass(frozen=True)
class StaffAuth:
    """What proves a message really comes from staff ([staff_auth])."""

    trusted_authserv_ids: tuple[str, ...] = ()
    require: str = "dmarc"
    exchange_online_tenant_id: str = ""


@dataclass(frozen=True)
class Policy:
    """The settings the procedure reads."""

    calendar: BusinessCalendar
    limits: rules.TimeLimits
    reopen_days: int = 14
    adr_wait_weeks: int = 8
    remedy_days: int = 28  # [adr_scheme]: calendar days to carry out the scheme's decision
    staff: tuple[StaffMember, ...] = ()
    staff_auth: StaffAuth = StaffAuth()
    deadlock_phrases: tuple[str, ...] = ()
    confirm_staff_commands: bool = True
    max_message_bytes: int = 25 * 1024 * 1024
    new_cases_per_sender_per_day: int = 5  # more from one sender thread onto their latest

    @property
    def staff_addresses(self) -> frozenset[str]:
        return frozenset(member.email.lower() for member in self.staff)

    def staff_member(self, address: str) -> StaffMember | None:
        """The member of staff whose address ADDRESS is (any case), or None."""
        address = address.lower()
        return next((m for m in self.staff if m.email.lower() == address), None)

    def with_role(self, role: str) -> list[StaffMember]:
        return [member for member in self.staff if member.role == role]
