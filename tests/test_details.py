"""Tests for R1: finding the details a complaint should contain."""

from __future__ import annotations

import pytest

from mailbot.procedure.details import Detail, find_details, missing_details

FULL_COMPLAINT = """\
Hello,

My broadband has dropped out every evening for the last three weeks and the
speed is a fraction of what my contract promises. I have rebooted the router
many times and your support line keeps cutting me off.

My account number is AC-1029384 and the line is installed at 14 Mill Lane,
Leeds LS6 2AB. Please call me on 07700 900123 after 5pm.

Kind regards,
Priya Sharma
"""


def test_realistic_full_complaint_gives_all_four_details() -> None:
    found = find_details("Priya Sharma", FULL_COMPLAINT)
    assert found == set(Detail)
    assert missing_details(found) == []


def test_full_complaint_signed_off_without_display_name_still_gives_a_name() -> None:
    assert Detail.NAME in find_details("", FULL_COMPLAINT)


def test_one_line_from_a_bare_address_gives_nothing() -> None:
    found = find_details("", "it's broken")
    assert found == frozenset()
    assert missing_details(found) == [
        Detail.NAME,
        Detail.CONTACT,
        Detail.SERVICE,
        Detail.OUTLINE,
    ]


def test_display_name_that_is_an_email_address_is_not_a_name() -> None:
    assert Detail.NAME not in find_details("bob@example.com", "it's broken")
    assert Detail.NAME not in find_details('"bob@example.com"', "it's broken")


def test_missing_details_keep_the_procedures_order() -> None:
    assert missing_details({Detail.OUTLINE, Detail.NAME}) == [Detail.CONTACT, Detail.SERVICE]
    assert [str(detail) for detail in missing_details(set())] == [
        "name",
        "contact details",
        "service details",
        "outline of the complaint",
    ]


# Name


@pytest.mark.parametrize(
    "body",
    [
        "Hi, my name is Alice Jones and I want to complain.",
        "Name: Alice Jones\nProblem: no internet",
        "The engineer never came.\n\nRegards,\nAlice",
        "The engineer never came.\n\nThanks,\n\nAlice Jones",
        "The engineer never came.\nMany thanks, Alice O'Neill",
        "The engineer never came.\n\nYours sincerely\nJ. Jones",
    ],
)
def test_name_is_found_in_the_body(body: str) -> None:
    assert Detail.NAME in find_details("", body)


@pytest.mark.parametrize(
    "body",
    [
        "my name is on the account but nobody will talk to me",
        "Thanks for nothing.",
        "Regards,\n07700 900123",
        "Thanks,\nsent from my phone",
    ],
)
def test_name_is_not_guessed_from_body_text(body: str) -> None:
    assert Detail.NAME not in find_details("", body)


# Contact details


@pytest.mark.parametrize(
    "number",
    [
        "07700 900123",
        "07700900123",
        "07700 900 123",
        "+44 7700 900123",
        "+447700900123",
        "+44 (0)20 7946 0958",
        "0044 20 7946 0958",
        "020 7946 0958",
        "(020) 7946 0958",
        "0113 496 0000",
        "01632 960001",
        "0117-496-0000",
        "0800 123 456",
        "0345 123 4567",
    ],
)
def test_uk_phone_number_formats_are_contact_details(number: str) -> None:
    assert Detail.CONTACT in find_details("", f"You can get me on {number}.")


@pytest.mark.parametrize(
    "text",
    [
        "I paid 1234 pounds on 12-03-2026.",
        "The outage lasted 45 minutes.",
        "Account number: 01234567890",
        "Order 0123456789 never arrived.",
        "07700 9001",  # too short
    ],
)
def test_numbers_that_are_not_phone_numbers(text: str) -> None:
    assert Detail.CONTACT not in find_details("", text)


@pytest.mark.parametrize(
    "text",
    [
        "Please contact me about this.",
        "Call me in the evening.",
        "Email me, do not phone.",
        "I'd rather you reach me at work.",
        "I prefer to hear back by email.",
        "Replies by phone only please.",
        "Write to jo.bloggs@example.org instead.",
    ],
)
def test_a_stated_contact_preference_is_contact_details(text: str) -> None:
    assert Detail.CONTACT in find_details("", text)


# Service details


@pytest.mark.parametrize(
    "text",
    [
        "Postcode SW1A 1AA.",
        "I live at M1 1AE",
        "It's at EC1A1BB now",
        "B33 8TH",
        "CR2 6XH",
        "DN55 1PT",
    ],
)
def test_uk_postcode_is_service_details(text: str) -> None:
    assert Detail.SERVICE in find_details("", text)


@pytest.mark.parametrize(
    "text",
    [
        "Account number: 12345678",
        "account no. 55501234",
        "My customer ref is CUST-000912",
        "Customer number 99887766",
        "a/c 4432198",
    ],
)
def test_account_number_or_reference_is_service_details(text: str) -> None:
    assert Detail.SERVICE in find_details("", text)


@pytest.mark.parametrize(
    "word",
    [
        "broadband",
        "fibre",
        "internet",
        "phone line",
        "router",
        "email account",
        "hosting",
        "domain",
        "package",
        "contract",
        "bill",
        "billing",
        "connection",
        "speed",
    ],
)
def test_service_word_is_service_details(word: str) -> None:
    assert Detail.SERVICE in find_details("", f"The {word} is wrong.")


@pytest.mark.parametrize(
    "text",
    [
        "I have been a customer for 10 years.",
        "It happened on the M25 3rd junction",  # not upper case postcode shape
        "It is online sometimes.",
    ],
)
def test_no_service_details_in_plain_words(text: str) -> None:
    assert Detail.SERVICE not in find_details("", text)


# Outline


def test_twelve_words_are_an_outline() -> None:
    body = "one two three four five six seven eight nine ten eleven twelve"
    assert Detail.OUTLINE in find_details("", body)


def test_eleven_words_are_not_an_outline() -> None:
    body = "one two three four five six seven eight nine ten eleven 12 13 14"
    assert Detail.OUTLINE not in find_details("", body)


def test_quoted_earlier_mail_is_not_part_of_the_outline_or_contact() -> None:
    body = (
        "Still broken.\n\n"
        "> Thank you for contacting us. Please call me on 0800 123 456 if you want\n"
        "> to talk about your broadband package and the problem you reported today.\n"
    )
    assert find_details("", body) == frozenset()
