"""The duplicate key: the same message by another route is the same; other content is not."""

from __future__ import annotations

from mailbot.mail.fingerprint import content_sha256

MESSAGE = (
    b"From: Ann <ann@example.net>\r\nTo: complaints@provider.example\r\n"
    b"Subject: My line is down\r\nMessage-ID: <1@example.net>\r\n\r\nIt is down.\r\n"
)


def test_trace_headers_and_folding_do_not_change_the_key() -> None:
    traced = (
        b"Received: from a by b; Mon, 30 Nov 2026 10:00:00 +0000\r\n"
        b"X-Received: by 2002:a05 with SMTP id x; Mon, 30 Nov 2026 10:00:01 -0800 (PST)\r\n"
        b"Delivered-To: complaints@provider.example\r\nReturn-Path: <ann@example.net>\r\n"
        b"ARC-Authentication-Results: i=1; mx.google.com; dkim=pass\r\n"
        b"Received-SPF: pass (google.com: domain of ann@example.net)\r\n"
        b"X-MS-Exchange-CrossTenant-Id: 72f988bf\r\nX-Spam-Status: No, score=-1.0\r\n"
        + MESSAGE.replace(b"Subject: My", b"Subject:\r\n My")
    )
    assert content_sha256(traced) == content_sha256(MESSAGE)
    assert content_sha256(MESSAGE.replace(b"\r\n", b"\n")) == content_sha256(MESSAGE)


def test_another_subject_body_or_sender_is_another_message() -> None:
    key = content_sha256(MESSAGE)
    assert content_sha256(MESSAGE.replace(b"down.", b"up.")) != key
    assert content_sha256(MESSAGE.replace(b"My line", b"Our line")) != key
    assert content_sha256(MESSAGE.replace(b"ann@", b"bob@")) != key
    assert content_sha256(MESSAGE.replace(b"\r\n\r\n", b"\r\nX-Priority: 1\r\n\r\n")) != key


def test_a_message_without_headers_or_body_still_has_a_key() -> None:
    assert len(content_sha256(b"")) == 64
    assert content_sha256(b"no headers at all") != content_sha256(b"")
