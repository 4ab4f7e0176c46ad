"""The mail platform's own spam verdicts and a trusted DMARC fail, read from a message's headers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import authres

from mailbot.mail.authentication import TENANT_ID, parse_without_authserv_id
from mailbot.mail.parse import ParsedMessage


@dataclass(frozen=True)
class SpamRules:
    """Which verdicts count ([spam]), and whose Authentication-Results are ours ([staff_auth])."""

    spamassassin: bool = True
    rspamd: bool = True
    microsoft: bool = True
    scl_threshold: int = 5
    subject_tags: tuple[str, ...] = ("[SPAM]", "*****SPAM*****")
    dmarc: bool = True
    trusted_authserv_ids: tuple[str, ...] = ()
    exchange_online_tenant_id: str = ""

    @property
    def dmarc_readable(self) -> bool:
        """Whether a DMARC fail can be believed at all: some server of ours is named."""
        return self.dmarc and bool(self.trusted_authserv_ids or self.exchange_online_tenant_id)

    def honoured(self) -> list[str]:
        """The verdicts honoured, in words (`mailbot check`)."""
        names = [
            "SpamAssassin" if self.spamassassin else "",
            "rspamd" if self.rspamd else "",
            f"Microsoft 365 (SCL {self.scl_threshold} or more, SFV, CAT)" if self.microsoft else "",
            f"subject tags {', '.join(self.subject_tags)}" if self.subject_tags else "",
            "DMARC fail with p=quarantine or p=reject" if self.dmarc_readable else "",
        ]
        return [name for name in names if name]


@dataclass(frozen=True)
class SpamVerdict:
    """What the platform said of a message: its spam filter's verdict and a forged sender."""

    filtered: str = ""  # the filter's verdict in words ("SpamAssassin: score 19.9"), or ""
    forged: str = ""  # "DMARC fail (p=reject) for example.com" from a server of ours, or ""

    @property
    def reason(self) -> str:
        return self.forged or self.filtered


VERDICTS = ("SpamAssassin", "rspamd", "Microsoft 365", "subject tag", "DMARC fail")


def verdict_of(reason: str) -> str:
    """Which verdict a held message's REASON (spam_verdict's words) is: one of VERDICTS."""
    return next((v for v in VERDICTS if reason.startswith(v)), "other")


def spam_verdict(message: ParsedMessage, rules: SpamRules) -> SpamVerdict:
    """Read the verdicts RULES honour from MESSAGE's headers; nothing is scored here."""
    headers = message.headers
    filtered = ""
    for read in (
        _spamassassin if rules.spamassassin else None,
        _rspamd if rules.rspamd else None,
        _microsoft if rules.microsoft else None,
    ):
        filtered = filtered or (read(headers, rules) if read is not None else "")
    subject = message.subject.lower()
    tag = next((t for t in rules.subject_tags if t and t.lower() in subject), "")
    filtered = filtered or (f"subject tag {tag}" if tag else "")
    forged = dmarc_fail(message, rules) if rules.dmarc_readable else ""
    return SpamVerdict(filtered, forged)


Headers = Sequence[tuple[str, str]]


def _values(headers: Headers, name: str) -> list[str]:
    name = name.lower()
    return [" ".join(value.split()) for key, value in headers if key.lower() == name]


_SCORE = re.compile(r"\bscore\s*=\s*(-?[\d.]+)", re.IGNORECASE)


def _spamassassin(headers: Headers, rules: SpamRules) -> str:
    """X-Spam-Status: Yes, score=19.9 required=5.0 ..., or X-Spam-Flag: YES."""
    for status in _values(headers, "X-Spam-Status"):
        if status.lower().startswith("yes"):
            score = _SCORE.search(status)
            return f"SpamAssassin: score {score.group(1)}" if score else "SpamAssassin: spam"
    if any(flag.lower() == "yes" for flag in _values(headers, "X-Spam-Flag")):
        return "SpamAssassin: X-Spam-Flag YES"
    return ""


_SPAMD_RESULT = re.compile(r"^\s*default\s*:\s*true\s*\[\s*(-?[\d.]+)", re.IGNORECASE)
_RSPAMD_ACTIONS = ("add header", "rewrite subject", "reject")


def _rspamd(headers: Headers, rules: SpamRules) -> str:
    """X-Spamd-Result: default: True [15.20 / 15.00], X-Rspamd-Action, or X-Spam: Yes."""
    for result in _values(headers, "X-Spamd-Result"):
        found = _SPAMD_RESULT.match(result)
        if found:
            return f"rspamd: score {found.group(1)}"
    for action in _values(headers, "X-Rspamd-Action"):
        if action.lower() in _RSPAMD_ACTIONS:
            return f"rspamd: action {action.lower()}"
    if any(value.lower() == "yes" for value in _values(headers, "X-Spam")):
        return "rspamd: X-Spam Yes"
    return ""


_FOREFRONT_SPAM = {("sfv", "spm"), ("sfv", "sks"), ("cat", "spm"), ("cat", "hspm"), ("cat", "phsh")}


def _microsoft(headers: Headers, rules: SpamRules) -> str:
    """X-MS-Exchange-Organization-SCL of the threshold or more; SFV or CAT in the Forefront
    report. Exchange's header firewall rewrites both on mail from outside, so they are its own."""
    for scl in _values(headers, "X-MS-Exchange-Organization-SCL"):
        if scl.lstrip("-").isdigit() and int(scl) >= rules.scl_threshold:
            return f"Microsoft 365: SCL {int(scl)}"
    for report in _values(headers, "X-Forefront-Antispam-Report"):
        for field in report.split(";"):
            key, _, value = field.partition(":")
            pair = (key.strip().lower(), value.strip().lower())
            if pair in _FOREFRONT_SPAM:
                return f"Microsoft 365: {key.strip().upper()}:{value.strip().upper()}"
    return ""


_DMARC_FAIL = re.compile(r"\bdmarc\s*=\s*fail\b([^;]*)", re.IGNORECASE)
_POLICY = re.compile(r"\b(?:p|policy|policy\.dmarc|action)\s*=\s*\"?([\w.]+)", re.IGNORECASE)
_FROM = re.compile(r"\bheader\.from\s*=\s*\"?([\w.-]+)", re.IGNORECASE)
# what a policy or Exchange Online's action= says to do with a failing message
_ENFORCED = {
    "quarantine": "quarantine",
    "reject": "reject",
    "oreject": "reject",  # Exchange: the domain says reject, delivered to junk instead
    "pct.quarantine": "quarantine",
    "pct.reject": "reject",
}


def dmarc_fail(message: ParsedMessage, rules: SpamRules) -> str:
    """A DMARC fail, where the sender's policy is quarantine or reject, in an
    Authentication-Results header a server of ours wrote: its authserv-id is trusted, or it
    is Exchange Online's own (topmost, with no authserv-id) on mail stamped with our tenant.
    A fail anyone else wrote, or one under p=none, is no verdict (""): as verify_sender trusts."""
    trusted = {t.lower() for t in rules.trusted_authserv_ids}
    values = _values(message.headers, "Authentication-Results")
    ours = [v for v in values if _authserv_id(v) in trusted]
    tenant = rules.exchange_online_tenant_id.lower()
    stamped = tenant and tenant in {t.lower() for t in _values(message.headers, TENANT_ID)}
    if stamped and values and parse_without_authserv_id(values[0]) is not None:
        ours.append(values[0])
    for value in ours:
        for clause in _DMARC_FAIL.finditer(value):
            said = clause.group(1)
            policy = next((p.group(1).lower() for p in _POLICY.finditer(said)), "")
            enforced = _ENFORCED.get(policy)
            if enforced is None:
                continue
            domain = _FROM.search(said)
            sender = message.sender.email.rpartition("@")[2] if message.sender else "?"
            return f"DMARC fail (p={enforced}) for {domain.group(1) if domain else sender}"
    return ""


def _authserv_id(value: str) -> str:
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
    except Exception:  # authres raises its own error types and ValueError on junk
        return ""
    return str(header.authserv_id or "").lower()
