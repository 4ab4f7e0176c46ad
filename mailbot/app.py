"""The composition root: builds every part from the settings and hands them to the commands."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import Event

from mailbot.apply import Casefile
from mailbot.config import ConfigError, Settings
from mailbot.correspondence import PERSON_LETTERS, Correspondence, letter_links, specimens
from mailbot.held import send_held_list
from mailbot.intake import Clock, Intake
from mailbot.mail.read import Reader
from mailbot.mail.spam import SpamRules
from mailbot.metrics import Metrics
from mailbot.notify import Notifier
from mailbot.outbox import OutboxWriter, SendReport, send_outbox
from mailbot.outcome import Outcome
from mailbot.procedure import rules
from mailbot.procedure.calendar import BusinessCalendar
from mailbot.procedure.policy import Policy, StaffAuth
from mailbot.store import counts, db
from mailbot.store.db import Engine, Session
from mailbot.store.inbound import message as stored_message
from mailbot.store.models import Disposition, OutboundStatus
from mailbot.templating import TemplateFault, Templates
from mailbot.timers import TimersReport, run_timers
from mailbot.transport.imap import Mailbox
from mailbot.transport.oauth2 import TokenSource, token_source
from mailbot.transport.smtp import SmtpTransport

log = logging.getLogger("mailbot")


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class PollReport:
    fetched: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    moved: int = 0  # messages moved out of the folder
    more: bool = False  # a backlog: more mail waits past this round's batches


# batches fetched in one poll: a backlog's letters then go between its rounds, not at its end
ROUND_BATCHES = 10


@dataclass
class Taken:
    """A fetched batch, its raw bytes stored."""

    uids: list[int]  # the raw bytes are in the database now, not kept here
    stored: list[int | Outcome]  # the stored row to process, or what became of it before

    @property
    def to_process(self) -> list[int]:
        return [item for item in self.stored if not isinstance(item, Outcome)]


@dataclass
class Cursor:
    """How far the checkpoint may go: not past a message left in the mailbox for later."""

    last_uid: int
    held_back: bool = False


@dataclass
class Stats:
    """Counts since the last summary line."""

    fetched: int = 0
    opened: int = 0
    threaded: int = 0
    quarantined: int = 0
    held: int = 0
    sent: int = 0
    failed: int = 0

    def count(self, outcome: Outcome) -> None:
        if outcome.duplicate:
            return
        if outcome.new_case:
            self.opened += 1
        elif outcome.case_ref:
            self.threaded += 1
        if outcome.disposition is Disposition.QUARANTINED:
            self.quarantined += 1
        if outcome.disposition is Disposition.HELD:
            self.held += 1


@dataclass
class App:
    """Everything a command needs, built once."""

    settings: Settings
    engine: Engine
    calendar: BusinessCalendar
    templates: Templates
    clock: Clock
    outbox: OutboxWriter
    casefile: Casefile
    intake: Intake
    metrics: Metrics
    notifier: Notifier
    tokens: TokenSource | None = None  # OAuth2's, shared by every IMAP and SMTP connection
    stats: Stats = field(default_factory=Stats)

    def close(self) -> None:
        self.notifier.close()
        self.engine.dispose()

    def outbox_depth(self) -> int:
        with Session(self.engine) as session:
            return counts.letter_count(session, OutboundStatus.QUEUED)

    def summary(self) -> str:
        """The admin's summary line; the counts start again from zero."""
        depth = self.outbox_depth()
        s, self.stats = self.stats, Stats()
        return (
            f"summary: fetched={s.fetched} cases_opened={s.opened} replies_threaded={s.threaded}"
            f" quarantined={s.quarantined} held={s.held} sent={s.sent} failed={s.failed}"
            f" queue_depth={depth}"
        )

    def mailbox(self) -> Mailbox:
        return Mailbox(self.settings.mailbox, tokens=self.tokens)

    def send(self) -> SendReport:
        """Send what is due in the outbox, then give up on the letters just refused whose
        first refusal is older than smtp.give_up_after, and send the admins' alerts."""
        sender = self.settings.smtp.from_address
        report = send_outbox(self.engine, self.smtp, sender, self.clock())
        with Session(self.engine) as session:
            given_up = self.outbox.give_up(session, self.clock(), report.refused)
            settled = self.casefile.held_in_sending(session)  # the server could not take
            session.commit()
        report.failed += len(given_up)
        report.letters.update((kind, "failed") for kind in given_up)
        if (given_up or settled) and not report.unreachable:  # their notices go now
            report.add(send_outbox(self.engine, self.smtp, sender, self.clock()))
        self._count(report)
        return report

    def smtp(self) -> SmtpTransport:
        return SmtpTransport(self.settings.smtp, self.tokens)

    def _count(self, report: SendReport) -> None:
        self.stats.sent += report.sent
        self.stats.failed += report.failed
        self.metrics.sent(report)

    def tick(self) -> TimersReport:
        """Run the procedure's timers at the clock's now."""
        return run_timers(self.engine, self.casefile, self.clock())

    def weekly_digest(self) -> int:
        """Queue this week's digest to the managers if it is due and not yet queued."""
        from mailbot.digest import send_weekly_digest  # (its charts load only when it runs)

        timers = self.casefile.policy.limits
        return send_weekly_digest(
            self.engine, self.settings, self.calendar, timers, self.outbox, self.clock()
        )

    def held_list(self) -> int:
        """Queue the list of held messages to the team leaders if one is due and not queued."""
        return send_held_list(
            self.engine, self.settings, self.calendar, self.templates, self.outbox, self.clock()
        )

    def resume_pending(self) -> None:
        """Process messages stored before a crash but never processed."""
        with Session(self.engine) as session:
            pending = [row.id for row in db.pending_inbound(session) if row.id is not None]
        for inbound_id in pending:
            log.info(
                "resuming inbound %d %s", inbound_id, self.intake.process(inbound_id).describe()
            )

    def poll(self, stop: Event) -> PollReport:
        """Fetch new mail past the checkpoint and, batch by batch, store it (committed),
        process it (one transaction), then move it and the checkpoint; STOP ends it between
        batches, the rest waits in the mailbox. At most ROUND_BATCHES batches: the report
        says if more waits."""
        report = PollReport()
        s = self.settings.mailbox
        with self.mailbox() as mailbox:
            with Session(self.engine) as session:
                checkpoint = db.get_checkpoint(session, s.folder)
            last_uid = 0
            if checkpoint is not None and checkpoint.uidvalidity == mailbox.uidvalidity:
                last_uid = checkpoint.last_uid
            elif checkpoint is not None:
                log.warning(
                    "UIDVALIDITY of %s changed %d -> %d: rescanning, duplicates are skipped",
                    s.folder,
                    checkpoint.uidvalidity,
                    mailbox.uidvalidity,
                )
            uids = mailbox.uids_after(last_uid)
            report.more = len(uids) > ROUND_BATCHES * s.batch_size
            uids = uids[: ROUND_BATCHES * s.batch_size]
            cursor = Cursor(last_uid)
            for start in range(0, len(uids), s.batch_size):
                if stop.is_set():
                    break
                taken = self._take(mailbox, uids[start : start + s.batch_size])
                self._finish(mailbox, taken, cursor, report)
        report.more = report.more and report.moved > 0  # (not the same mail again and again)
        return report

    def _take(self, mailbox: Mailbox, uids: list[int]) -> Taken:
        """Fetch UIDS and store their raw bytes (committed)."""
        where = f"imap {self.settings.mailbox.folder} {mailbox.uidvalidity}"
        fetched = mailbox.fetch(uids)
        stored = self.intake.store([(m.raw, m.internaldate, f"{where}/{m.uid}") for m in fetched])
        return Taken([m.uid for m in fetched], stored)

    def _finish(self, mailbox: Mailbox, taken: Taken, cursor: Cursor, report: PollReport) -> None:
        """Process a taken batch (one commit), then move its messages and the checkpoint."""
        s = self.settings.mailbox
        processed = iter(self.intake.process_batch(taken.to_process))
        folders = {Disposition.QUARANTINED: s.quarantine_folder, Disposition.HELD: s.held_folder}
        done: dict[str, list[int]] = {s.processed_folder: [], **{f: [] for f in folders.values()}}
        released: list[int] = []
        for uid, item in zip(taken.uids, taken.stored, strict=True):
            report.fetched += 1
            outcome = item if isinstance(item, Outcome) else next(processed)
            self._count_fetched(outcome, f"uid={uid}", report)
            released += outcome.released
            if outcome.left_in_mailbox:  # its daemon moves it, or a later cycle does
                cursor.held_back = True  # the checkpoint waits for it
                continue
            done[folders.get(outcome.disposition, s.processed_folder)].append(uid)
            if not cursor.held_back:
                cursor.last_uid = max(cursor.last_uid, uid)
        # the database has committed every message above: only now touch the mailbox
        for folder, moved in done.items():
            mailbox.move(moved, folder)
            report.moved += len(moved)
        with Session(self.engine) as session:
            db.set_checkpoint(session, s.folder, mailbox.uidvalidity, cursor.last_uid)
            session.commit()
        if released:  # a team leader's #release: processed now, as on their arrival
            _, back = self.process_released(released)
            mailbox.take_back(s.held_folder, back, s.processed_folder)

    def _count_fetched(self, outcome: Outcome, where: str, report: PollReport) -> None:
        log_outcome(outcome, where)
        report.outcomes.append(outcome)
        self.stats.fetched += 1
        self.stats.count(outcome)
        self.metrics.fetched(outcome)

    def process_released(self, inbound_ids: list[int]) -> tuple[list[Outcome], dict[str, str]]:
        """Process held messages just released, each as on its arrival: what became of each,
        and the mailbox copies to take back from the held folder (content key -> Message-ID)."""
        outcomes: list[Outcome] = []
        back: dict[str, str] = {}
        for inbound_id in inbound_ids:
            outcome = self.intake.process(inbound_id)
            log_outcome(outcome, f"released id={inbound_id}")
            outcomes.append(outcome)
            with Session(self.engine) as session:
                row = stored_message(session, inbound_id)
                if row.source.startswith("imap ") and not outcome.left_in_mailbox:
                    back[row.content_sha256] = row.message_id
        return outcomes, back


def log_outcome(outcome: Outcome, where: str) -> None:
    level = logging.WARNING if outcome.disposition is Disposition.QUARANTINED else logging.INFO
    log.log(level, "%s %s", where, outcome.describe())


def build_app(
    settings: Settings, clock: Callable[[], datetime] = wall_clock, read_only: bool = False
) -> App:
    """Build the parts; a setting the calendar refuses, or a letter's template that fails to
    render, becomes a ConfigError. READ_ONLY (`mailbot check`): the database is opened as it
    is, never created or migrated."""
    p = settings.procedure
    try:
        calendar = BusinessCalendar(
            timezone=p.timezone,
            opening=p.opening,
            closing=p.closing,
            region=p.region,
            extra_closed_days=p.closed_days,
        )
    except ValueError as exc:
        raise ConfigError("procedure.region/timezone", str(exc)) from None
    if settings.staff_auth.require == "none":
        log.warning('staff_auth.require = "none": any mail from a staff address is trusted')
    templates = Templates(p.timezone, settings.letters.own_templates, links=letter_links(settings))
    try:  # every letter once, now: a template fault stops start-up, never a customer's mail
        for kind, context in specimens(settings, templates):
            templates.check(kind, context, person=kind in PERSON_LETTERS)
    except TemplateFault as fault:
        raise ConfigError(f"template {fault.template}", fault.problem) from None
    url = settings.database.url
    engine = db.open_read_only(url) if read_only else db.open_database(url)
    outbox = OutboxWriter(settings, templates, clock, calendar)
    casefile = Casefile(
        procedure_policy(settings, calendar),
        Correspondence(settings, templates, outbox),
        outbox,
        clock,
        p.case_ref_format,
    )
    reader = Reader(settings.own_addresses, spam_rules(settings))
    intake = Intake(engine, settings, casefile, reader, clock)
    tokens = (
        token_source(settings.oauth2, settings.mailbox.username) if settings.uses_oauth2 else None
    )
    metrics = Metrics(engine, clock)
    notifier = Notifier(os.environ)
    return App(
        settings,
        engine,
        calendar,
        templates,
        clock,
        outbox,
        casefile,
        intake,
        metrics,
        notifier,
        tokens,
    )


def procedure_policy(settings: Settings, calendar: BusinessCalendar) -> Policy:
    """What the procedure's transitions read of the settings."""
    p, auth = settings.procedure, settings.staff_auth
    return Policy(
        calendar=calendar,
        limits=rules.TimeLimits(
            p.cutoff, p.auto_escalate_working_days, p.deadlock_decision_working_days
        ),
        reopen_days=p.reopen_days,
        adr_wait_weeks=p.adr_wait_weeks,
        remedy_days=settings.adr_scheme.remedy_days,
        staff=tuple(settings.staff),
        staff_auth=StaffAuth(
            tuple(auth.trusted_authserv_ids), auth.require, auth.exchange_online_tenant_id
        ),
        deadlock_phrases=tuple(p.deadlock_phrases),
        confirm_staff_commands=settings.notifications.confirm_staff_commands,
        max_message_bytes=settings.limits.max_message_bytes,
        new_cases_per_sender_per_day=settings.limits.new_cases_per_sender_per_day,
    )


def spam_rules(settings: Settings) -> SpamRules:
    """Which of the mail platform's verdicts count ([spam]), with [staff_auth]'s servers."""
    spam, auth = settings.spam, settings.staff_auth
    return SpamRules(
        spamassassin=spam.spamassassin,
        rspamd=spam.rspamd,
        microsoft=spam.microsoft,
        scl_threshold=spam.scl_threshold,
        subject_tags=tuple(spam.subject_tags),
        dmarc=spam.dmarc,
        trusted_authserv_ids=tuple(auth.trusted_authserv_ids),
        exchange_online_tenant_id=auth.exchange_online_tenant_id,
    )
