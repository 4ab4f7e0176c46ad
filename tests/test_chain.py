"""The tamper-evident log's arithmetic (mail/chain.py), without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mailbot.mail import chain
from mailbot.mail.chain import Link, check, content_digest, event_content, link_hash

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def chained(*records: tuple[str, int, str, dict[str, object]], salt: str = "s") -> list[Link]:
    """Links for RECORDS (record, id, kind, content), written in order, as the store writes."""
    links, previous = [], ""
    for seq, (record, record_id, kind, content) in enumerate(records, 1):
        at = AT + timedelta(minutes=seq)
        digest = content_digest(salt, content)
        hashed = link_hash(previous, seq, record, record_id, at, kind, digest)
        links.append(
            Link(seq, record, record_id, at, kind, salt, digest, hashed, (at, kind, content))
        )
        previous = hashed
    return links


COMPLAINT = (chain.RECEIVED, 1, "complaint", chain.received_content("ab", "a@x", "S", "Hi"))
ACK = (chain.LETTER, 1, "acknowledgement", chain.letter_content("cd", "a@x", "[R] S"))
OPENED = (chain.EVENT, 1, "complaint", event_content("a@x", "complaint", "new"))
ERASURE = (chain.EVENT, 2, chain.ERASED, event_content("admin", chain.ERASED, "erase"))


def test_a_chain_written_in_order_holds() -> None:
    assert check(chained(COMPLAINT, OPENED, ACK), []) is None


def test_a_record_whose_content_changed_is_named() -> None:
    links = chained(COMPLAINT, OPENED, ACK)
    at, kind, _ = links[2].now or (AT, "", {})
    links[2] = replace(links[2], now=(at, kind, chain.letter_content("ef", "a@x", "[R] S")))
    broken = check(links, [])
    assert broken is not None
    assert (
        broken.describe() == "link 3 (letter 1, acknowledgement): the record's content was changed"
    )


def test_a_deleted_record_and_a_deleted_link_are_both_seen() -> None:
    links = chained(COMPLAINT, OPENED, ACK)
    gone = check([*links[:1], replace(links[1], now=None), links[2]], [])
    assert gone is not None and gone.why == "the record is gone"
    skipped = check([links[0], links[2]], [])
    assert (
        skipped is not None and skipped.describe() == "link 2: missing: the chain jumps to link 3"
    )


def test_a_record_no_link_names_is_an_addition() -> None:
    broken = check(chained(COMPLAINT, OPENED), [(chain.RECEIVED, 7)])
    assert (
        broken is not None
        and broken.describe() == "message received 7: a record that is in no chain (added)"
    )


def test_a_changed_time_or_a_rewritten_hash_breaks_the_chain() -> None:
    links = chained(COMPLAINT, OPENED, ACK)
    at, kind, content = links[1].now or (AT, "", {})
    moved = check(
        [links[0], replace(links[1], now=(at + timedelta(hours=1), kind, content)), links[2]], []
    )
    assert moved is not None and "the record now says complaint at" in moved.why
    forged = check([links[0], replace(links[1], hash="0" * 64), links[2]], [])
    assert forged is not None and forged.why == "the link's hash does not match"


def test_erased_content_keeps_the_chain_only_when_an_erasure_follows() -> None:
    links = chained(COMPLAINT, OPENED, ERASURE)
    erased = [replace(link, salt="", now=(link.at, link.kind, {})) for link in links[:2]]
    assert check([*erased, links[2]], []) is None
    unexplained = chained(COMPLAINT, OPENED)
    first = unexplained[0]
    blanked = [replace(first, salt="", now=(first.at, first.kind, {})), unexplained[1]]
    broken = check(blanked, [])
    assert (
        broken is not None and broken.why == "the content's salt is gone, but no erasure followed"
    )


def test_a_migrated_case_s_start_seals_the_records_written_before_it() -> None:
    before = [(chain.EVENT, 1), (chain.LETTER, 1)]
    start = chain.pre_chain_digest(before)
    first = link_hash("", 1, chain.START, None, AT, chain.STARTED, start)
    links = [Link(1, chain.START, None, AT, chain.STARTED, "", start, first, None)]
    assert check(links, before) is None
    assert check(links, before[:1]) is not None  # one deleted
    assert check(links, [*before, (chain.RECEIVED, 9)]) is not None  # one added


def test_the_salt_makes_an_erased_record_s_digest_unguessable() -> None:
    content = event_content("alice@example.net", "customer reply", "")
    assert content_digest("one", content) != content_digest("two", content)
