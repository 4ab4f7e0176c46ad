"""Staff verified as Exchange Online and Gmail stamp them; the same claims from outside are not."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mailbot.config import ConfigError, load_settings
from mailbot.mail.authentication import parse_without_authserv_id, verify_sender
from mailbot.mail.parse import ParsedMessage, parse_message

TENANT = "7c3b1f52-9d4e-4a8b-b6f1-2e5d0c9a4f31"  # provider.example's directory (tenant) id
OTHER_TENANT = "0b6d2e8a-41f7-4c3e-9a05-d2c87e1f6b94"

# Shapes taken from Microsoft's documentation (learn.microsoft.com "Anti-spam message headers
# in Microsoft 365", "Header firewall") and from real messages Exchange Online delivered, as
# kept in public mailing-list archives; names, addresses and ids are the sandbox's.

RECEIVED_IN_TENANT = (
    "Received: from DB9PR01MB7179.eurprd01.prod.exchangelabs.com (2603:10a6:10:2cc::19)\r\n"
    " by AM0PR01MB4147.eurprd01.prod.exchangelabs.com with HTTPS; Mon, 23 Nov 2026\r\n"
    " 11:00:02 +0000\r\n"
    "Received: from DB9PR01MB7179.eurprd01.prod.exchangelabs.com\r\n"
    " ([fe80::7d7e:3788:b094:b809]) by DB9PR01MB7179.eurprd01.prod.exchangelabs.com\r\n"
    " ([fe80::7d7e:3788:b094:b809%6]) with mapi id 15.20.8158.017; Mon, 23 Nov 2026\r\n"
    " 11:00:01 +0000\r\n"
)
# Mail between colleagues in one tenant: nothing signed it, so no DMARC result.
INTRA_TENANT_RESULTS = (
    "Authentication-Results: dkim=none (message not signed)\r\n"
    " header.d=none;dmarc=none action=none header.from=provider.example;\r\n"
)


def tenant_stamps(
    auth_as: str = "Internal",
    tenant: str = TENANT,
    directionality: str = "Originating",
    extra: str = "",
) -> str:
    """What the tenant's transport writes below the sender's headers, on delivery."""
    return (
        "Accept-Language: en-GB, en-US\r\n"
        "Content-Language: en-GB\r\n"
        f"X-MS-Exchange-Organization-AuthAs: {auth_as}\r\n"
        "X-MS-Exchange-Organization-AuthMechanism: 04\r\n"
        "X-MS-Exchange-Organization-AuthSource: DB9PR01MB7179.eurprd01.prod.exchangelabs.com\r\n"
        "X-MS-Has-Attach: \r\n"
        "X-MS-Exchange-Organization-Network-Message-Id: e3aea8aa-daf2-4fa5-c100-08d8f3578406\r\n"
        "X-MS-Exchange-Organization-SCL: -1\r\n"
        "X-MS-TNEF-Correlator: \r\n"
        "X-MS-Exchange-Organization-RecordReviewCfmType: 0\r\n"
        f"X-MS-Exchange-Organization-MessageDirectionality: {directionality}\r\n"
        f"{extra}"
        "X-MS-Exchange-CrossTenant-Network-Message-Id: e3aea8aa-daf2-4fa5-c100-08d8f3578406\r\n"
        f"X-MS-Exchange-CrossTenant-AuthAs: {auth_as}\r\n"
        "X-MS-Exchange-CrossTenant-AuthSource: DB9PR01MB7179.eurprd01.prod.exchangelabs.com\r\n"
        "X-MS-Exchange-CrossTenant-OriginalArrivalTime: 23 Nov 2026 11:00:01.8830\r\n"
        " (UTC)\r\n"
        "X-MS-Exchange-CrossTenant-FromEntityHeader: Hosted\r\n"
        f"X-MS-Exchange-CrossTenant-Id: {tenant}\r\n"
        "X-MS-Exchange-CrossTenant-MailboxType: HOSTED\r\n"
        "X-MS-Exchange-Transport-CrossTenantHeadersStamped: AM0PR01MB4147\r\n"
    )


def outlook_reply(
    top: str = RECEIVED_IN_TENANT + INTRA_TENANT_RESULTS,
    sender_wrote: str = "",
    stamps: str = tenant_stamps(),
    sender: str = "tl@provider.example",
) -> bytes:
    """A reply from Outlook as the complaints mailbox holds it: the tenant's Received and
    Authentication-Results on top, the sender's headers (SENDER_WROTE among them), then
    the organization and cross-tenant stamps that Exchange Online writes below them."""
    return (
        f"{top}"
        f"From: Terry Leader <{sender}>\r\n"
        "To: Provider Complaints <complaints@provider.example>\r\n"
        "Subject: RE: [CMP-2026-000001] New complaint: My broadband keeps dropping\r\n"
        "Thread-Topic: [CMP-2026-000001] New complaint: My broadband keeps dropping\r\n"
        "Thread-Index: AQHXJS+jiVlA9W11uE+RPaeN3QHKyaqcNlmA\r\n"
        "Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n"
        "Message-ID: <DB9PR01MB71797C1A0E4D2B8F3A6C9D41977D9@DB9PR01MB7179.eurprd01.prod."
        "exchangelabs.com>\r\n"
        f"{sender_wrote}{stamps}"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "MIME-Version: 1.0\r\n\r\n"
        "Hello Alice, the engineer fixed the line.\r\n#resolve line repaired\r\n"
    ).encode()


# From outside: Exchange Online Protection's verdict on top, then the forger's own headers,
# then the stamps of a message that came in from the internet.
FORGED_FROM_OUTSIDE = (
    "Received: from AM2PEPF0001C70A.eurprd05.prod.outlook.com (2603:10a6:20b:659::29)\r\n"
    " by AM0PR01MB4147.eurprd01.prod.exchangelabs.com with Microsoft SMTP Server\r\n"
    " (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.8158.17;\r\n"
    " Mon, 23 Nov 2026 11:00:02 +0000\r\n"
    "Authentication-Results: spf=fail (sender IP is 203.0.113.66)\r\n"
    " smtp.mailfrom=provider.example; dkim=none (message not signed)\r\n"
    " header.d=none;dmarc=fail action=oreject\r\n"
    " header.from=provider.example;compauth=fail reason=000\r\n"
    "Received-SPF: Fail (protection.outlook.com: domain of provider.example does not\r\n"
    " designate 203.0.113.66 as permitted sender) receiver=protection.outlook.com;\r\n"
    " client-ip=203.0.113.66; helo=mail.attacker.example;\r\n"
    "Received: from mail.attacker.example (203.0.113.66) by\r\n"
    " AM2PEPF0001C70A.mail.protection.outlook.com (10.167.16.8) with Microsoft SMTP\r\n"
    " Server id 15.20.8158.5 via Frontend Transport; Mon, 23 Nov 2026 11:00:02 +0000\r\n"
)
INCOMING = tenant_stamps(
    auth_as="Anonymous",
    directionality="Incoming",
    extra=f"X-EOPAttributedMessage: 0\r\nX-EOPTenantAttributedMessage: {TENANT}:0\r\n",
)
# What a forger copies from any mail the tenant ever sent out (CrossTenant headers leave
# with it), or writes because a guide said Exchange trusts it.
FORGERIES = {
    "Exchange's own results": (
        "Authentication-Results: dmarc=pass action=none header.from=provider.example\r\n"
    ),
    "an organization AuthAs Internal": (
        "X-MS-Exchange-Organization-AuthAs: Internal\r\n"
        "X-MS-Exchange-Organization-AuthMechanism: 04\r\n"
        "X-MS-Exchange-Organization-AuthSource: DB9PR01MB7179.eurprd01.prod.exchangelabs.com\r\n"
    ),
    "the tenant's cross-tenant stamps": (
        "X-MS-Exchange-CrossTenant-AuthAs: Internal\r\n"
        "X-MS-Exchange-CrossTenant-FromEntityHeader: Hosted\r\n"
        f"X-MS-Exchange-CrossTenant-Id: {TENANT}\r\n"
    ),
}
ALL_FORGERIES = "".join(FORGERIES.values())


def parse(raw: bytes) -> ParsedMessage:
    return parse_message(raw, hashlib.sha256(raw).hexdigest())


def verified(raw: bytes, tenant: str = TENANT, require: str = "dmarc") -> bool:
    return verify_sender(parse(raw), [], require, tenant).verified


def test_a_colleague_in_the_tenant_is_verified_by_exchange_onlines_internal_stamp() -> None:
    verdict = verify_sender(parse(outlook_reply()), [], "dmarc", TENANT)
    assert verdict.verified, verdict.reason
    assert "authenticated user" in verdict.reason


def test_staff_mail_from_outside_the_tenant_is_verified_by_exchanges_dmarc_pass() -> None:
    """A staff address sending through another service that signs for provider.example."""
    passed = FORGED_FROM_OUTSIDE.replace(
        "spf=fail (sender IP is 203.0.113.66)\r\n smtp.mailfrom=provider.example; dkim=none "
        "(message not signed)\r\n header.d=none;dmarc=fail action=oreject\r\n "
        "header.from=provider.example;compauth=fail reason=000",
        "spf=pass (sender IP is 198.51.100.7)\r\n smtp.mailfrom=provider.example; dkim=pass "
        "(signature was verified)\r\n header.d=provider.example;dmarc=pass action=none\r\n "
        "header.from=provider.example;compauth=pass reason=100",
    )
    assert passed != FORGED_FROM_OUTSIDE
    assert verified(outlook_reply(top=passed, stamps=INCOMING))
    assert verified(outlook_reply(top=passed, stamps=INCOMING), require="dkim")


def test_without_the_tenant_id_exchange_onlines_stamps_prove_nothing() -> None:
    assert not verified(outlook_reply(), tenant="")


@pytest.mark.parametrize("forged", [*FORGERIES.values(), ALL_FORGERIES], ids=[*FORGERIES, "all"])
def test_a_forged_staff_address_from_outside_is_never_verified(forged: str) -> None:
    raw = outlook_reply(top=FORGED_FROM_OUTSIDE, sender_wrote=forged, stamps=INCOMING)
    verdict = verify_sender(parse(raw), [], "dmarc", TENANT)
    assert not verdict.verified
    assert "dmarc=fail" in verdict.reason


def test_a_forged_authas_internal_below_the_tenants_own_stamp_is_not_believed() -> None:
    stamps = INCOMING + FORGERIES["an organization AuthAs Internal"]
    assert not verified(outlook_reply(top=FORGED_FROM_OUTSIDE, stamps=stamps))


def test_a_forged_authas_internal_above_the_tenants_own_stamp_is_not_believed_either() -> None:
    forged = FORGERIES["an organization AuthAs Internal"]
    assert not verified(
        outlook_reply(top=FORGED_FROM_OUTSIDE, sender_wrote=forged, stamps=INCOMING)
    )


def test_a_forged_dmarc_pass_below_exchanges_own_results_is_not_believed() -> None:
    forged = FORGERIES["Exchange's own results"]
    assert not verified(outlook_reply(top=FORGED_FROM_OUTSIDE + forged, stamps=INCOMING))


@pytest.mark.parametrize(
    "stamps",
    [
        tenant_stamps(tenant=OTHER_TENANT),
        tenant_stamps(extra=f"X-EOPTenantAttributedMessage: {OTHER_TENANT}:0\r\n"),
        tenant_stamps() + f"X-MS-Exchange-CrossTenant-Id: {OTHER_TENANT}\r\n",
    ],
    ids=["its cross-tenant id", "its attribution", "a second cross-tenant id"],
)
def test_an_internal_stamp_of_another_tenant_is_not_ours(stamps: str) -> None:
    verdict = verify_sender(parse(outlook_reply(stamps=stamps)), [], "dmarc", TENANT)
    assert not verdict.verified
    assert OTHER_TENANT in verdict.reason


def test_a_message_with_no_tenant_stamp_is_not_exchange_onlines() -> None:
    """The same headers reaching a mailbox elsewhere: nothing ties them to the tenant."""
    stamps = "".join(
        line + "\r\n"
        for line in tenant_stamps().split("\r\n")
        if line and not line.startswith("X-MS-Exchange-CrossTenant-Id")
    )
    assert not verified(outlook_reply(stamps=stamps))


@pytest.mark.parametrize(
    "extra",
    [
        "X-MS-Exchange-Organization-AutoForwarded: true\r\n",
        "X-MS-Exchange-Organization-MessageDirectionality: Incoming\r\n",
    ],
    ids=["forwarded by a mailbox rule", "came in from outside"],
)
def test_an_internal_stamp_that_says_the_message_came_from_elsewhere_proves_nothing(
    extra: str,
) -> None:
    assert not verified(outlook_reply(stamps=tenant_stamps(extra=extra)))


@pytest.mark.parametrize(
    "line",
    ["X-MS-Exchange-Organization-AuthSource", "X-MS-Exchange-Organization-AuthMechanism"],
)
def test_an_authas_internal_without_the_rest_of_its_stamp_proves_nothing(line: str) -> None:
    stamps = "".join(
        row + "\r\n" for row in tenant_stamps().split("\r\n") if row and not row.startswith(line)
    )
    assert not verified(outlook_reply(stamps=stamps))


@pytest.mark.parametrize(
    "results",
    [
        "dmarc=pass (unclosed comment header.from=provider.example",
        "dmarc=pass " + "(" * 50_000 + ")" * 50_000 + " header.from=provider.example",
        'dmarc=pass header.from="provider.example"',
        "dmarc=pass) header.from=provider.example",
        "=pass header.from=provider.example",
        "dmarc",
        ";;;",
        "",
        "\u00e9=pass",
        "dmarc=fail header.from=provider.example; dmarc=pass header.from=provider.example",
        "dmarc=pass header.from=attacker.example",
        "dmarc=bestguesspass action=none header.from=provider.example",
        "mx.attacker.example; dmarc=pass header.from=provider.example",
    ],
)
def test_an_authentication_results_that_does_not_parse_or_pass_never_verifies(
    results: str,
) -> None:
    top = f"{RECEIVED_IN_TENANT}Authentication-Results: {results}\r\n"
    raw = outlook_reply(top=top, sender_wrote=ALL_FORGERIES, stamps=INCOMING)
    assert not verified(raw)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (  # learn.microsoft.com, Anti-spam message headers: the DMARC and SPF examples
            "spf=pass (sender IP is 192.168.0.1) smtp.mailfrom=contoso.com; dkim=pass "
            "(signature was verified) header.d=contoso.com;dmarc=pass action=none "
            "header.from=contoso.com;compauth=pass reason=100",
            ["spf=pass", "dkim=pass", "dmarc=pass", "compauth=pass"],
        ),
        (  # a real one, with the bare domains Exchange leaves between results
            "spf=fail (sender IP is 1.1.1.1) smtp.mailfrom=eu-west-1.amazonses.com; "
            "recevingdomain.com; dkim=pass (signature was verified) header.d=domain.com;"
            "domain1.com; dmarc=bestguesspass action=none header.from=domain.com;",
            ["spf=fail", "dkim=pass", "dmarc=bestguesspass"],
        ),
        ("mx.google.com; dmarc=pass header.from=x.example", None),
    ],
)
def test_exchange_onlines_results_without_an_authserv_id_are_read(
    value: str, shown: list[str] | None
) -> None:
    results = parse_without_authserv_id(value)
    assert (None if results is None else [f"{r.method}={r.result}" for r in results]) == shown


# Gmail writes Authentication-Results with its authserv-id, folded, below its ARC set.
GMAIL = (
    "Delivered-To: complaints@provider.example\r\n"
    "Received: by 2002:a05:6358:5e0d:b0:1c3:7f2:5e8a with SMTP id q13csp2716542rwn;\r\n"
    "        Mon, 23 Nov 2026 03:00:03 -0800 (PST)\r\n"
    "X-Received: by 2002:a17:907:6d0c:b0:a9a:1a5:2f9e with SMTP id sa12mr4203415ejc.7.\r\n"
    "        Mon, 23 Nov 2026 03:00:02 -0800 (PST)\r\n"
    "ARC-Seal: i=1; a=rsa-sha256; t=1795950002; cv=none;\r\n"
    "        d=google.com; s=arc-20240605;\r\n"
    "        b=B5fGq0XlbTgXcVqYwq3m5cJ0mY8vQhRZk7Yt2u1xW9vV4Zs3pQ8bN0dR6fT2gH4jK7\r\n"
    "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=google.com;\r\n"
    "        s=arc-20240605;\r\n"
    "        h=to:subject:message-id:date:from:in-reply-to:references:mime-version\r\n"
    "         :dkim-signature;\r\n"
    "        bh=9IUI+C9mtzEczYy1KkzcW44odlFnx3qYl7pXb/072F0=;\r\n"
    "        b=Veyemrl5cSFCSuJ40lID9iseYbP8v8e3HAgL7ATCZ/f57cTC0FF3hBCYyTJrAIfmC8\r\n"
    "ARC-Authentication-Results: i=1; mx.google.com;\r\n"
    "       dkim=pass header.i=@provider.example header.s=google header.b=lhk5qU4z;\r\n"
    "       spf=pass (google.com: domain of tl@provider.example designates 209.85.220.41 as"
    " permitted sender) smtp.mailfrom=tl@provider.example;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=provider.example\r\n"
    "Return-Path: <tl@provider.example>\r\n"
    "Received: from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\r\n"
    "        by mx.google.com with SMTPS id a640c23a62f3a-a9a0f1c1d4asor2291566b.7.2026.11.23\r\n"
    "        for <complaints@provider.example>\r\n"
    "        (Google Transport Security);\r\n"
    "        Mon, 23 Nov 2026 03:00:02 -0800 (PST)\r\n"
    "Received-SPF: pass (google.com: domain of tl@provider.example designates 209.85.220.41"
    " as permitted sender) client-ip=209.85.220.41;\r\n"
    "Authentication-Results: mx.google.com;\r\n"
    "       dkim=pass header.i=@provider.example header.s=google header.b=lhk5qU4z;\r\n"
    "       spf=pass (google.com: domain of tl@provider.example designates 209.85.220.41 as"
    " permitted sender) smtp.mailfrom=tl@provider.example;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=provider.example\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    "        d=provider.example; s=google; t=1795950002; x=1796554802; darn=provider.example;\r\n"
    "        h=to:subject:message-id:date:from:in-reply-to:references:mime-version\r\n"
    "         :from:to:cc:subject:date:message-id:reply-to;\r\n"
    "        bh=9IUI+C9mtzEczYy1KkzcW44odlFnx3qYl7pXb/072F0=;\r\n"
    "        b=lhk5qU4z4GwfZqTKR5mbk79cDQzaoJ563ewToos4HaKC4mOW42ZuJj4rIKQuuXEL39VM\r\n"
    "X-Google-Smtp-Source: AGHT+IFpZ6z3c8n0dJb1w5bQm3yWmYQqRvxW0sXk9u4aJYz8kq1Lw\r\n"
    "X-Gm-Message-State: AOJu0YyQvVZp1mQw3XbJ0K2yX9cR7lD4gF6hT8uN0aS2dE5fG7hJ9kL\r\n"
    "MIME-Version: 1.0\r\n"
    "From: Terry Leader <tl@provider.example>\r\n"
    "Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n"
    "Message-ID: <CAFq7M3m2Zk8Yt1xQ@mail.gmail.com>\r\n"
    "Subject: Re: [CMP-2026-000001] New complaint: My broadband keeps dropping\r\n"
    "To: Provider Complaints <complaints@provider.example>\r\n"
    'Content-Type: text/plain; charset="UTF-8"\r\n\r\n'
    "Hello Alice, the engineer fixed the line.\r\n#resolve line repaired\r\n"
)


@pytest.mark.parametrize("require", ["dmarc", "dkim"])
def test_a_colleague_on_google_workspace_is_verified_by_gmails_authentication_results(
    require: str,
) -> None:
    verdict = verify_sender(parse(GMAIL.encode()), ["mx.google.com"], require)
    assert verdict.verified, verdict.reason
    assert verdict.reason == f"mx.google.com: {require}=pass for provider.example"


def test_the_same_gmail_claim_written_by_an_outsider_is_not_verified() -> None:
    """Gmail's own verdict on top; should an outsider's mx.google.com header survive below
    it (RFC 8601 section 5 has Gmail delete those), it is not believed against Gmail's."""
    own = (
        "Authentication-Results: mx.google.com;\r\n"
        "       spf=fail (google.com: domain of tl@provider.example does not designate"
        " 203.0.113.66 as permitted sender) smtp.mailfrom=tl@provider.example;\r\n"
        "       dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=provider.example\r\n"
    )
    forged = GMAIL[GMAIL.index("Authentication-Results: mx.google.com") :]
    assert not verify_sender(parse((own + forged).encode()), ["mx.google.com"], "dmarc").verified


STAFF = '[[staff]]\nemail = "tl@provider.example"\nname = "Terry Leader"\nrole = "team_leader"\n'
MINIMAL = (
    '[mailbox]\nhost = "h"\nusername = "u"\npassword = "p"\n'
    '[smtp]\nhost = "s"\nfrom_address = "complaints@provider.example"\n'
)


def test_the_tenant_id_alone_is_a_way_to_prove_staff(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'{MINIMAL}[staff_auth]\nexchange_online_tenant_id = "{TENANT.upper()}"\n{STAFF}'
    )
    assert load_settings(path, environ={}).staff_auth.exchange_online_tenant_id == TENANT
    path.write_text(f"{MINIMAL}{STAFF}")
    with pytest.raises(ConfigError, match="set exchange_online_tenant_id"):
        load_settings(path, environ={})


def test_a_tenant_id_that_is_not_a_guid_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'{MINIMAL}[staff_auth]\nexchange_online_tenant_id = "provider.example"\n')
    with pytest.raises(ConfigError, match=r"staff_auth\.exchange_online_tenant_id: .*not a tenant"):
        load_settings(path, environ={})
