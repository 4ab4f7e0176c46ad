"""Is a staff address genuine? Authentication-Results from a trusted server, or Exchange Online."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import authres

from mailbot.mail.parse import ParsedMessage


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str


@dataclass(frozen=True)
class Result:
    """One method's result in an Authentication-Results header, e.g. dmarc=pass header.from=x."""

    method: str
    result: str
    properties: dict[str, str]


def verify_sender(
    message: ParsedMessage,
    trusted_authserv_ids: Collection[str],
    require: str,
    exchange_online_tenant_id: str = "",
) -> Verdict:
    """Whether a trusted server vouched for the From domain by REQUIRE ("dmarc" or "dkim"),
    or Exchange Online of tenant EXCHANGE_ONLINE_TENANT_ID did (see exchange_online).

    Only headers whose authserv-id is trusted count: RFC 8601 section 5 has the border
    server delete any that claim its id, so a sender cannot forge one that survives. Should
    one survive, it is not believed against the server's own result for the same domain.
    """
    if require == "none":
        return Verdict(True, 'staff_auth.require = "none"')
    if message.sender is None or "@" not in message.sender.email:
        return Verdict(False, "no From address")
    if message.sender_header != "From":  # DMARC and DKIM vouch for the From domain only
        return Verdict(False, f"no usable From address (sender from {message.sender_header})")
    domain = message.sender.email.rpartition("@")[2].lower()
    trusted = {t.lower() for t in trusted_authserv_ids}
    seen: list[str] = []
    passed, contradicted = "", False
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
        results = [
            Result(
                str(r.method).lower(),
                str(r.result).lower(),
                {f"{p.type}.{p.name}".lower(): str(p.value).lower() for p in r.properties},
            )
            for r in header.results
        ]
        for result in results:
            if result.method != require:
                continue
            vouched = _vouched_domain(result, domain)
            if result.result == "pass" and vouched == domain:
                passed = passed or f"{authserv}: {require}=pass for {domain}"
                continue
            seen.append(f"{authserv}: {require}={result.result} for {vouched}")
            contradicted = contradicted or vouched == domain
    if passed and not contradicted:  # a trusted server's own word against it: a forgery
        return Verdict(True, passed)
    if exchange_online_tenant_id:
        verdict = exchange_online(message.headers, domain, require, exchange_online_tenant_id)
        if verdict.verified:
            return verdict
        seen.append(verdict.reason)
    return Verdict(False, "; ".join(seen) or "no Authentication-Results header")


def _vouched_domain(result: Result, domain: str) -> str:
    if result.method == "dmarc":  # DMARC is about the From domain by definition
        return result.properties.get("header.from", domain)
    return (
        result.properties.get("header.d")
        or result.properties.get("header.i", "").rpartition("@")[2]
    )


# Organization headers (X-MS-Exchange-Organization-*) are Exchange's header firewall's to
# keep: it removes them from mail entering the organization from outside and re-stamps its
# own, and keeps AuthAs, AuthSource and AuthMechanism on delivery to a mailbox. The
# CrossTenant headers are not firewalled: they leave the tenant on every message it sends,
# so they only name the tenant, they never prove anything. docs/operating.md, "Staff on
# Exchange Online and Google Workspace".
AUTH_AS = "x-ms-exchange-organization-authas"
AUTH_SOURCE = "x-ms-exchange-organization-authsource"
AUTH_MECHANISM = "x-ms-exchange-organization-authmechanism"
AUTO_FORWARDED = "x-ms-exchange-organization-autoforwarded"
DIRECTIONALITY = "x-ms-exchange-organization-messagedirectionality"
TENANT_ID = "x-ms-exchange-crosstenant-id"
ATTRIBUTED_TENANT = "x-eoptenantattributedmessage"


def exchange_online(
    headers: Sequence[tuple[str, str]], domain: str, require: str, tenant_id: str
) -> Verdict:
    """Whether Exchange Online of tenant TENANT_ID vouched for this message from DOMAIN.

    Either its transport stamped the sender as an authenticated user of the organization
    (X-MS-Exchange-Organization-AuthAs: Internal), or its topmost Authentication-Results,
    which Exchange Online writes without an authserv-id, shows REQUIRE=pass for DOMAIN.
    Both only when every tenant id on the message is TENANT_ID: the mailbox is in that tenant.
    """
    found: dict[str, list[str]] = {}
    for name, value in headers:
        found.setdefault(name.lower(), []).append(value.strip())
    tenant = tenant_id.lower()
    tenants = [t.lower() for t in found.get(TENANT_ID, [])]
    tenants += [a.partition(":")[0].strip().lower() for a in found.get(ATTRIBUTED_TENANT, [])]
    if not found.get(TENANT_ID):
        return Verdict(False, "no Exchange Online tenant stamp")
    if any(t != tenant for t in tenants):
        others = sorted({t for t in tenants if t != tenant})
        return Verdict(False, f"stamped by another Exchange Online tenant: {', '.join(others)}")

    internal = _internal_sender(found)
    if internal is None:
        return Verdict(True, f"Exchange Online tenant {tenant}: sent by an authenticated user")
    results = found.get("authentication-results", [])
    if not results:
        return Verdict(False, f"Exchange Online: {internal}; no Authentication-Results")
    against = _exchange_results(results[0], require, domain)  # the topmost is its own
    if against is None:
        return Verdict(True, f"Exchange Online tenant {tenant}: {require}=pass for {domain}")
    return Verdict(False, f"Exchange Online: {internal}; {against}")


def _internal_sender(found: dict[str, list[str]]) -> str | None:
    """None when the organization stamped the sender as its own, else why it did not."""
    auth_as = {a.lower() for a in found.get(AUTH_AS, [])}
    if auth_as != {"internal"}:  # a second, different AuthAs is someone's forgery
        return f"AuthAs {', '.join(sorted(auth_as)) or 'missing'}"
    if not all(found.get(AUTH_SOURCE, [""])) or not all(found.get(AUTH_MECHANISM, [""])):
        return "AuthAs without its AuthSource and AuthMechanism"
    if any(f.lower() == "true" for f in found.get(AUTO_FORWARDED, [])):
        return "forwarded by a mailbox rule: the tenant vouches for the forwarder only"
    if any(d.lower() != "originating" for d in found.get(DIRECTIONALITY, [])):
        return "came in from outside the organization"
    return None


def _exchange_results(value: str, require: str, domain: str) -> str | None:
    """None when VALUE, Exchange Online's Authentication-Results, shows REQUIRE=pass for DOMAIN."""
    results = parse_without_authserv_id(value)
    if results is None:
        return "an Authentication-Results header that is not Exchange Online's"
    verdicts = {(r.result, _vouched_domain(r, domain)) for r in results if r.method == require}
    if verdicts == {("pass", domain)}:  # one pass, nothing in the header against it
        return None
    shown = ", ".join(f"{require}={result} for {d}" for result, d in sorted(verdicts))
    return shown or f"no {require} result"


_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_RESULT = re.compile(r"^([a-z0-9][a-z0-9_-]*)=([a-z0-9._-]+)$")


def parse_without_authserv_id(value: str) -> list[Result] | None:
    """Results of an Authentication-Results header as Exchange Online writes it, without an
    authserv-id (against RFC 8601): "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=x;
    dkim=none (message not signed) header.d=none;dmarc=none action=none header.from=x;".

    None for anything else: an authserv-id, an unclosed comment, a quoted string, a result
    that is not METHOD=RESULT. Bare words between semicolons (Exchange writes domains so,
    at times) are skipped.
    """
    text = value.lower()
    for _ in range(4):  # comments nest, innermost first; deeper is no shape Exchange writes
        text = _COMMENT.sub(" ", text)
    if "(" in text or ")" in text or '"' in text:
        return None
    results: list[Result] = []
    for statement in text.split(";"):
        words = statement.split()
        if not words:
            continue
        if "=" not in words[0]:
            if not results:  # the header starts with a name: an authserv-id, not Exchange's
                return None
            continue  # a stray word after the results, as Exchange writes at times
        head = _RESULT.match(words[0])
        if head is None:
            return None
        pairs = (word.partition("=") for word in words[1:] if "=" in word)
        results.append(Result(head.group(1), head.group(2), {k: v for k, _, v in pairs}))
    return results or None
