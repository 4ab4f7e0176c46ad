"""The mail platform's spam verdicts and a trusted DMARC fail, read from real spam: what is held."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest

from mailbot.mail.parse import parse_message
from mailbot.mail.read import Reader
from mailbot.mail.spam import SpamRules, SpamVerdict, spam_verdict, verdict_of
from mailbot.procedure import effects as fx
from mailbot.procedure.route import Arrival, Thread, route
from mailbot.procedure.vocabulary import MessageKind
from tests.corpus import corpus_dir
from tests.test_route import CASE, NOW, POLICY

TRUSTED = "mx.provider.example"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RULES = SpamRules(trusted_authserv_ids=(TRUSTED,))
# Real spam from the corpus (SpamScope/mail-parser's test mails) that reads as a person's mail:
# an invoice with malware, a Chinese invoice-fraud offer, a helicopter-simulator advert.
SPAM = ("mail_test_3", "mail_test_12", "mail_test_8")


def corpus_spam(name: str) -> bytes:
    return (corpus_dir() / "mail-parser" / "tests" / "mails" / name).read_bytes()


def stamped(raw: bytes, *headers: str) -> bytes:
    """RAW with HEADERS on top, as a filter or our border server writes them on arrival."""
    return "".join(f"{header}\r\n" for header in headers).encode() + raw


def verdict(raw: bytes, rules: SpamRules = RULES) -> SpamVerdict:
    return spam_verdict(parse_message(raw, hashlib.sha256(raw).hexdigest()), rules)


@pytest.mark.parametrize("name", SPAM)
@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            "X-Spam-Status: Yes, score=19.9 required=5.0 tests=BAYES_99,HTML_MESSAGE",
            "SpamAssassin: score 19.9",
        ),
        ("X-Spam-Flag: YES", "SpamAssassin: X-Spam-Flag YES"),
        ("X-Spamd-Result: default: True [15.20 / 15.00]; BAYES_SPAM(5.10)", "rspamd: score 15.20"),
        ("X-Rspamd-Action: rewrite subject", "rspamd: action rewrite subject"),
        ("X-Spam: Yes", "rspamd: X-Spam Yes"),
        ("X-MS-Exchange-Organization-SCL: 5", "Microsoft 365: SCL 5"),
        ("X-MS-Exchange-Organization-SCL: 9", "Microsoft 365: SCL 9"),
        (
            "X-Forefront-Antispam-Report: CIP:192.0.2.7;CTRY:TR;LANG:en;SCL:1;SRV:;IPV:NLI;"
            "SFV:SPM;H:mail.example;PTR:;CAT:NONE;SFS:(13230031);DIR:INB;",
            "Microsoft 365: SFV:SPM",
        ),
        (
            "X-Forefront-Antispam-Report: CIP:192.0.2.7;CTRY:;LANG:en;SCL:1;SFV:NSPM;CAT:PHSH;",
            "Microsoft 365: CAT:PHSH",
        ),
    ],
)
def test_each_filters_verdict_on_real_spam_is_read_with_its_reason(
    name: str, header: str, reason: str
) -> None:
    assert verdict(stamped(corpus_spam(name), header)) == SpamVerdict(filtered=reason)


@pytest.mark.parametrize(
    "header",
    [
        "X-Spam-Status: No, score=1.2 required=5.0 tests=HTML_MESSAGE",
        "X-Spam-Flag: NO",
        "X-Spamd-Result: default: False [1.20 / 15.00]",
        "X-Rspamd-Action: no action",
        "X-Rspamd-Action: greylist",
        "X-Spam: undefined",
        "X-MS-Exchange-Organization-SCL: 1",
        "X-MS-Exchange-Organization-SCL: -1",
        "X-Forefront-Antispam-Report: CIP:192.0.2.7;SCL:1;SFV:NSPM;CAT:NONE;",
        "Authentication-Results: mx.provider.example; dmarc=fail (p=none dis=none)"
        " header.from=randtelekom.com.tr",
        "Authentication-Results: mx.forger.example; dmarc=fail (p=reject dis=reject)"
        " header.from=randtelekom.com.tr",
        "Authentication-Results: mx.provider.example; dmarc=pass (p=reject dis=none)"
        " header.from=randtelekom.com.tr",
    ],
)
def test_ham_verdicts_p_none_and_a_sender_written_dmarc_fail_hold_nothing(header: str) -> None:
    assert verdict(stamped(corpus_spam("mail_test_3"), header)) == SpamVerdict()


def test_the_corpus_spam_without_a_verdict_is_not_held_mailbot_scores_nothing() -> None:
    for name in SPAM:
        assert verdict(corpus_spam(name)) == SpamVerdict(), name


def test_a_real_x_spam_undefined_header_is_no_verdict() -> None:
    raw = corpus_spam("mail_test_6")  # real mail carrying "X-Spam: undefined"
    assert "X-Spam: undefined" in raw.decode("utf-8", "replace")
    assert verdict(raw).filtered == ""


@pytest.mark.parametrize(
    ("subject", "tag"),
    [("[SPAM] (19.9) You have won", "[SPAM]"), ("*****SPAM***** Hi there", "*****SPAM*****")],
)
def test_a_filters_subject_tag_is_a_verdict(subject: str, tag: str) -> None:
    raw = corpus_spam("mail_test_3").replace(b"Subject: Hi there", f"Subject: {subject}".encode())
    assert verdict(raw) == SpamVerdict(filtered=f"subject tag {tag}")
    assert verdict(raw, replace(RULES, subject_tags=())) == SpamVerdict()


def test_a_verdict_turned_off_in_the_settings_holds_nothing() -> None:
    raw = stamped(corpus_spam("mail_test_3"), "X-Spam-Flag: YES", "X-Spam: Yes")
    off = replace(RULES, spamassassin=False, rspamd=False)
    assert verdict(raw, off) == SpamVerdict()
    assert verdict(raw, replace(RULES, spamassassin=False)).filtered == "rspamd: X-Spam Yes"


def test_an_scl_below_a_raised_threshold_holds_nothing() -> None:
    raw = stamped(corpus_spam("mail_test_3"), "X-MS-Exchange-Organization-SCL: 6")
    assert verdict(raw, replace(RULES, scl_threshold=7)) == SpamVerdict()


@pytest.mark.parametrize(
    ("result", "policy"),
    [
        ("dmarc=fail (p=reject sp=reject dis=none) header.from=barclays-alerts.example", "reject"),
        ("dmarc=fail (p=QUARANTINE sp=NONE dis=QUARANTINE) header.from=barclays-alerts.example",
         "quarantine"),
        ("dmarc=fail policy.dmarc=reject header.from=barclays-alerts.example", "reject"),
        ('dmarc=fail reason="No valid SPF" header.from=barclays-alerts.example (policy=reject)',
         "reject"),
    ],
)  # fmt: skip
def test_a_trusted_dmarc_fail_under_an_enforced_policy_is_a_forged_sender(
    result: str, policy: str
) -> None:
    raw = stamped(
        corpus_spam("mail_test_17"),  # real phishing in a bank's name
        f"Authentication-Results: {TRUSTED}; spf=fail smtp.mailfrom=vps.example; {result}",
    )
    assert verdict(raw).forged == f"DMARC fail (p={policy}) for barclays-alerts.example"
    assert verdict(raw).reason == verdict(raw).forged


def test_without_a_trusted_server_named_no_dmarc_fail_is_believed() -> None:
    raw = stamped(
        corpus_spam("mail_test_17"),
        f"Authentication-Results: {TRUSTED}; dmarc=fail (p=reject) header.from=bbva.mx",
    )
    assert verdict(raw, SpamRules()) == SpamVerdict()
    assert not SpamRules().dmarc_readable
    assert "DMARC" not in " ".join(SpamRules().honoured())


def test_exchange_onlines_own_dmarc_fail_counts_for_its_tenant_only() -> None:
    raw = stamped(
        corpus_spam("mail_test_17"),
        "Authentication-Results: spf=fail (sender IP is 192.0.2.9) smtp.mailfrom=vps.example;"
        " dkim=none (message not signed) header.d=none;dmarc=fail action=oreject"
        " header.from=bbva.mx;compauth=fail reason=000",
        f"X-MS-Exchange-CrossTenant-Id: {TENANT}",
    )
    tenant = SpamRules(exchange_online_tenant_id=TENANT)
    assert verdict(raw, tenant).forged == "DMARC fail (p=reject) for bbva.mx"
    other = SpamRules(exchange_online_tenant_id="11111111-2222-3333-4444-555555555555")
    assert verdict(raw, other) == SpamVerdict()


def test_a_forged_sender_and_a_filters_verdict_together_give_the_forgery_as_the_reason() -> None:
    raw = stamped(
        corpus_spam("mail_test_3"),
        "X-Spam-Flag: YES",
        f"Authentication-Results: {TRUSTED}; dmarc=fail (p=reject) header.from=randtelekom.com.tr",
    )
    found = verdict(raw)
    assert found.reason == "DMARC fail (p=reject) for randtelekom.com.tr"
    assert found.filtered == "SpamAssassin: X-Spam-Flag YES"


@pytest.mark.parametrize(
    ("reason", "name"),
    [
        ("SpamAssassin: score 19.9", "SpamAssassin"),
        ("rspamd: action reject", "rspamd"),
        ("Microsoft 365: SCL 9", "Microsoft 365"),
        ("subject tag [SPAM]", "subject tag"),
        ("DMARC fail (p=reject) for x.example", "DMARC fail"),
        ("something else", "other"),
    ],
)
def test_the_reports_verdict_names(reason: str, name: str) -> None:
    assert verdict_of(reason) == name


# -- the route: what is held, and what never is -------------------------------------------

READER = Reader(frozenset({"complaints@provider.example"}), RULES)
FLAGGED = "X-Spam-Status: Yes, score=6.1 required=5.0"
FORGED = f"Authentication-Results: {TRUSTED}; dmarc=fail (p=reject) header.from=example.com"


def mail(sender: str, *headers: str) -> bytes:
    head = [
        *headers,
        f"From: {sender}",
        "To: complaints@provider.example",
        "Subject: Re: [CMP-2026-000001] Broadband drops",
        "Message-ID: <m1@example.com>",
    ]
    return ("\r\n".join(head) + "\r\n\r\nIt dropped again last night.\r\n").encode()


NO_CASE = Thread()


def routed(raw: bytes, thread: Thread = NO_CASE, arrival: Arrival | None = None) -> list[fx.Effect]:
    return route(READER.read(raw), arrival or Arrival(NOW, len(raw)), thread, NOW, POLICY)


def test_a_new_message_the_filter_calls_spam_is_held_with_its_reason_and_nothing_else() -> None:
    raw = stamped(corpus_spam("mail_test_3"), FLAGGED)
    assert routed(raw) == [fx.Hold("SpamAssassin: score 6.1")]


def test_the_customers_reply_on_their_case_is_never_held_by_a_filters_false_alarm() -> None:
    effects = routed(mail("Pat <pat@example.com>", FLAGGED), Thread(CASE))
    assert isinstance(effects[0], fx.Attach)
    assert effects[0].kind == MessageKind.CUSTOMER_REPLY


def test_the_customers_address_with_a_trusted_dmarc_fail_is_held_as_forged() -> None:
    effects = routed(mail("Pat <pat@example.com>", FORGED), Thread(CASE))
    assert effects == [fx.Hold("DMARC fail (p=reject) for example.com")]


def test_a_stranger_naming_a_case_with_a_spam_verdict_is_held() -> None:
    assert routed(mail("Sam <sam@elsewhere.example>", FLAGGED), Thread(CASE)) == [
        fx.Hold("SpamAssassin: score 6.1")
    ]


def test_a_released_message_is_processed_as_a_complaint_and_the_release_recorded() -> None:
    raw = stamped(corpus_spam("mail_test_3"), FLAGGED)
    arrival = Arrival(NOW - timedelta(days=4), len(raw), "tl@provider.example", "SpamAssassin: 6.1")
    effects = routed(raw, Thread(), arrival)
    assert isinstance(effects[0], fx.Open)
    assert effects[0].state.received_at == NOW - timedelta(days=4), "the original receipt time"
    assert fx.Record("tl@provider.example", "released", "held: SpamAssassin: 6.1") in effects
    overdue = fx.ToRole("team_leader", MessageKind.FIRST_RESPONSE_OVERDUE)
    assert overdue in effects, "its first response was due yesterday: the team leaders told"
    on_time = Arrival(NOW - timedelta(hours=1), len(raw), "tl@provider.example", "X")
    assert overdue not in routed(raw, Thread(), on_time)


def test_a_sender_over_the_days_limit_threads_onto_their_latest_case_recorded() -> None:
    raw = mail("Pat <pat@example.com>").replace(b"[CMP-2026-000001] ", b"")
    effects = routed(raw, Thread(opened_today=5, latest_today=CASE))
    assert isinstance(effects[0], fx.Attach)
    assert effects[0].kind == MessageKind.CUSTOMER_REPLY
    [flood] = [e for e in effects if isinstance(e, fx.Record) and e.action == "flood"]
    assert "5 cases opened today" in flood.detail and CASE.ref in flood.detail
    assert isinstance(routed(raw, Thread(opened_today=4, latest_today=CASE))[0], fx.Open)
