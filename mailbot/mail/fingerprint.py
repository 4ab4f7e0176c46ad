"""The fingerprint of a message: a SHA-256 of it without the trace headers each delivery adds."""

from __future__ import annotations

import hashlib
import re

from mailbot.mail.parse import split_header_block

# Written by the servers on the way, not by the sender: a second delivery of one message (an
# alias, a second route, a copy into the folder) differs in these and nothing else.
_TRACE = re.compile(
    rb"(?:x-)?received|received-spf|delivered-to|x-original-to|return-path|envelope-to"
    rb"|(?:arc|x-ms|x-microsoft|x-forefront|x-spam|x-virus|x-gm|x-google|x-envelope)-[!-9;-~]*"
    rb"|authentication-results|x-forwarded-(?:to|for)|(?:x-google-)?dkim-signature",
    re.IGNORECASE,
)
_NAME = re.compile(rb"([!-9;-~]+)[ \t]*:")


def content_sha256(raw: bytes) -> str:
    """SHA-256 of RAW's headers (trace headers left out, unfolded) and body, line ends unified."""
    head, body = split_header_block(raw) or (raw, b"")
    fields: list[bytes] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b" " + line.strip()  # a folded line continues the field before
        else:
            fields.append(line.strip())
    kept = []
    for field in fields:
        name = _NAME.match(field)
        if name is not None and _TRACE.fullmatch(name.group(1)):
            continue
        kept.append(b" ".join(field.split()))
    sha = hashlib.sha256(b"\n".join(kept))
    sha.update(b"\n\n" + body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return sha.hexdigest()
