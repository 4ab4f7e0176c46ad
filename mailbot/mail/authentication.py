"""Is a staff address genuine? Authentication-Results from a trusted server (RFC 8601)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import authres

from mailbot.mail.parse import ParsedMessage


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str


def verify_sender(
    message: ParsedMessage, trusted_authserv_ids: Collection[str], require: str
) -> Verdict:
    """Whether a trusted server vouched for the From domain by REQUIRE ("dmarc" or "dkim").

    Only headers whose authserv-id is trusted count: RFC 8601 section 5 has the border
    server delete any that claim its id, so a sender cannot forge one that survives.
    """
    if require == "none":
        return Verdict(True, 'staff_auth.require = "none"')
    if message.sender is None or "@" not in message.sender.email:
        return Verdict(False, "no From address")
    if message.sender_header != "From":  # DMARC and DKIM vouch for the From domain only
        return Verdict(False, f"no usable From address (sender from {message.sender_header})")
    domain = message.sender.email.rpartition("@")[2]
    trusted = {t.lower() for t in trusted_authserv_ids}
    seen: list[str] = []
    for name, value in message.headers:
        if name.lower() != "authentication-results":
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except Exception:  # authres raises its own error types and ValueError on junk
            seen.append("an unreadable Authentication-Results header")
            continue
        authserv = str(header.authserv_id or "").lower()
        if authserv not in trusted:
            seen.append(f"Authentication-Results from untrusted {authserv or 'nobody'}")
            continue
        for result in header.results:
            if str(result.method).lower() != require:
                continue
            where = {f"{p.type}.{p.name}".lower(): str(p.value).lower() for p in result.properties}
            if require == "dmarc":  # DMARC is about the From domain by definition
                vouched = where.get("header.from", domain)
            else:
                vouched = where.get("header.d") or where.get("header.i", "").rpartition("@")[2]
            if str(result.result).lower() == "pass" and vouched == domain:
                return Verdict(True, f"{authserv}: {require}=pass for {domain}")
            seen.append(f"{authserv}: {require}={result.result} for {vouched}")
    return Verdict(False, "; ".join(seen) or "no Authentication-Results header")
