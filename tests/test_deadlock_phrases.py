"""R6: does a customer's message ask for a deadlock letter, in their own words?"""

from __future__ import annotations

import pytest

from mailbot.procedure.deadlock import _EVERY_PHRASE_HAS_ONE, DEFAULT_PHRASES, deadlock_request


@pytest.mark.parametrize(
    "text",
    [
        "Please send me a deadlock letter",
        "I want a letter of deadlock",
        "I want to go to the ombudsman now",
        "issue me a deadlock letter",
        "Could you give me a dead-lock letter please.",
        "PLEASE SEND ME A DEADLOCK LETTER",
        "This has gone on long enough.\nPlease send me a\ndeadlock\n  letter today.",
        "I would like to refer my complaint to the ombudsman.",
    ],
)
def test_a_customer_asking_for_a_deadlock_letter_in_their_own_words_is_a_request(
    text: str,
) -> None:
    words = deadlock_request(text)
    assert words is not None
    assert " ".join(words.lower().split()) in " ".join(text.lower().split())


@pytest.mark.parametrize(
    "text",
    [
        "The line has been dead for a week",
        "I rang the ombudsman's website for advice",
        "My router keeps locking up and the letter you sent was wrong.",
        "Thanks, the engineer fixed it, the deadline was met.",
        "",
    ],
)
def test_a_message_that_does_not_ask_for_the_letter_is_not_a_request(text: str) -> None:
    assert deadlock_request(text) is None


def test_a_configured_extra_phrase_counts_as_a_request() -> None:
    text = "I demand your Final   Decision\nLetter by Friday."
    assert deadlock_request(text) is None
    assert deadlock_request(text, ["final decision letter"]) == "final decision letter"


def test_a_blank_extra_phrase_matches_nothing() -> None:
    assert deadlock_request("The line has been dead for a week", ["", "   "]) is None


def test_the_default_phrases_still_work_alongside_extra_phrases() -> None:
    assert deadlock_request("Please send me a deadlock letter", ["final decision letter"])


@pytest.mark.parametrize(
    "text",
    [
        "I don't want a deadlock letter, just fix my line.",
        "I don’t want a deadlock letter",  # typographic apostrophe, as phones send it
        "I do not want to go to the ombudsman now, I want my broadband back.",
        "Please do not refer this to the ombudsman yet.",
        "Don't send me a deadlock letter yet, the engineer is coming.",
    ],
)
def test_a_customer_saying_they_do_not_want_the_letter_is_not_a_request(text: str) -> None:
    assert deadlock_request(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "I'm not happy, send me a deadlock letter",
        "I don't want to wait any longer so send me a deadlock letter",
        "Why won't you send me a deadlock letter?",
        "I don't care any more, I want a letter of deadlock",
    ],
)
def test_a_negative_word_elsewhere_in_the_message_does_not_hide_a_request(text: str) -> None:
    assert deadlock_request(text) is not None


def test_every_default_phrase_needs_a_word_of_the_quick_test() -> None:
    # text without one of these words skips the phrases: a new phrase must keep that true
    for pattern in DEFAULT_PHRASES:
        assert _EVERY_PHRASE_HAS_ONE.search(pattern), pattern
