"""The token cache: one token until a margin before it expires, a new one when refused."""

from __future__ import annotations

from mailbot.transport.oauth2 import Grant, TokenSource


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(lifetime: float) -> tuple[TokenSource, Clock, list[str]]:
    clock, issued = Clock(), list[str]()

    def fetch() -> Grant:
        issued.append(f"token-{len(issued) + 1}")
        return Grant(issued[-1], lifetime)

    return TokenSource(fetch, "test", clock), clock, issued


def test_an_hours_token_serves_every_connection_until_a_minute_before_it_expires() -> None:
    tokens, clock, issued = source(3600)
    assert tokens.token() == tokens.token() == "token-1"
    clock.now += 3600 - 61
    assert tokens.token() == "token-1"
    clock.now += 1
    assert tokens.token() == "token-2"
    assert issued == ["token-1", "token-2"]


def test_a_token_of_seconds_is_renewed_a_quarter_of_its_life_early() -> None:
    tokens, clock, _ = source(2)
    assert tokens.token() == "token-1"
    clock.now += 1.4
    assert tokens.token() == "token-1"
    clock.now += 0.1  # 1.5 s of 2: a new connection would reach the server too late
    assert tokens.token() == "token-2"


def test_a_refused_token_is_replaced_at_once_and_the_new_one_kept() -> None:
    tokens, _, issued = source(3600)
    assert tokens.token() == "token-1"
    assert tokens.renew() == "token-2"
    assert tokens.token() == "token-2"
    assert issued == ["token-1", "token-2"]
