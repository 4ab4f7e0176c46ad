"""Staff commands: `#command argument` lines in the new part of a staff reply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from mailbot.mail.trim import starts_history
from mailbot.procedure.needs import FORMATS, NONE
from mailbot.procedure.vocabulary import Role as Role

EVERYONE = frozenset(Role)
# the data protection officer acts on the cases it is given as a team leader does
LEADERS = frozenset({Role.TEAM_LEADER, Role.MANAGER, Role.DPO})


@dataclass(frozen=True)
class Spec:
    """What a command takes and who may give it."""

    usage: str  # "#name ARGUMENT": one "#", so that no wrapping of it starts a line with "#"
    needs_argument: bool
    roles: frozenset[Role]
    help: str


COMMANDS: dict[str, Spec] = {
    "note": Spec("#note", False, EVERYONE, "the whole reply is an internal note"),
    "resolve": Spec("#resolve SUMMARY", True, EVERYONE, "resolve the case with a summary"),
    "updates": Spec(
        "#updates N | weekly | none",
        True,
        EVERYONE,
        "agree another update interval with the customer (working days)",
    ),
    "escalate": Spec("#escalate REASON", True, LEADERS, "escalate to Manager level"),
    "vexatious": Spec("#vexatious REASON", True, LEADERS, "mark the complaint vexatious"),
    "out-of-scope": Spec(
        "#out-of-scope REASON", True, LEADERS, "mark it outside the ADR scheme's jurisdiction"
    ),
    "deadlock": Spec(
        "#deadlock [POSITION | refuse REASON]",
        False,
        LEADERS,
        "send the deadlock letter now (with our final position), or refuse a request",
    ),
    "reopen": Spec(
        "#reopen REASON",
        True,
        LEADERS,
        "reopen a case that is resolved, had our final response, or is not a complaint",
    ),
    "not-a-complaint": Spec(
        "#not-a-complaint REASON",
        True,
        EVERYONE,
        "spam, a sales offer, a misdirected enquiry: no more letters of any kind",
    ),
    "merge": Spec(
        "#merge CMP-REF",
        True,
        EVERYONE,
        "this case and CMP-REF are one complaint: the one received first carries on",
    ),
    "adr": Spec(
        "#adr SCHEME-REF [YYYY-MM-DD]",
        True,
        LEADERS,
        "the ADR scheme took the complaint (its reference, the date it wants our case file)",
    ),
    "adr-outcome": Spec(
        "#adr-outcome upheld | partly | not-upheld [WHAT WE MUST DO]",
        True,
        LEADERS,
        "the scheme's decision, as the customer accepted it",
    ),
    "remedy-done": Spec(
        "#remedy-done NOTE", True, LEADERS, "we did what the scheme decided: resolves the case"
    ),
    "sent-by-post": Spec(
        "#sent-by-post YYYY-MM-DD",
        True,
        LEADERS,
        "the ADR notice or deadlock letter that bounced went by post on that day",
    ),
    # who may act as the customer is a decision of the case's handlers (they are told of
    # third-party mail), as reopening is: an accepted address can reopen and ask for letters
    "customer-address": Spec(
        "#customer-address ADDRESS [WHY]",
        True,
        LEADERS,
        "mail from ADDRESS counts as the customer's from now on",
    ),
    "release": Spec(
        "#release ID",
        True,
        LEADERS,
        "in a reply to the held-list letter: process held message ID as on its arrival",
    ),
    "needs": Spec(
        "#needs FORMAT [NOTE] | none",
        True,
        EVERYONE,
        "the customer's letters in a format: " + ", ".join(FORMATS) + " (none: remove every need)",
    ),
    "support": Spec(
        "#support NOTE",
        True,
        EVERYONE,
        "record a support need the customer told you of (a call after 2pm, a carer present)",
    ),
    "sar-done": Spec(
        "#sar-done NOTE",
        True,
        LEADERS,
        "the customer's subject access request is answered (mailbot export made the copy)",
    ),
    "sar-extend": Spec(
        "#sar-extend REASON",
        True,
        LEADERS,
        "extend the subject access request by two months, once; the customer is told why",
    ),
    "new": Spec(
        "#new customer@example.com Name",
        True,
        LEADERS,
        "open a case for a complaint that came by post or phone",
    ),
}

# A command is "#word" starting a line the staff member typed; Outlook and phones capitalise
# the first letter. Blanks before it are allowed (an HTML editor's non-breaking space, a
# stray space). What keeps mailbot's own text from reading as commands when it is quoted
# back is that reading stops where quoted history starts, and that mailbot never writes "#"
# where a client's unindenting or wrapping could put it first on a line: commands go in
# quotes ("#resolve SUMMARY"), or first in a bullet ("  - #resolv is not a command").
_LINE = re.compile(r"^\s*#([A-Za-z][A-Za-z-]*)\b[ \t:]*(.*?)\s*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
WEEKLY = 5
# the ADR scheme's decisions, as staff write them and as the case keeps them
OUTCOMES = {"upheld": "upheld", "partly": "partly", "not-upheld": "not_upheld"}


@dataclass(frozen=True)
class Command:
    name: str
    argument: str

    @property
    def update_interval(self) -> int:
        """For #updates: working days between updates, 0 for none."""
        word = self.argument.split()[0].lower()
        named = {"weekly": WEEKLY, "none": 0}
        return named[word] if word in named else int(word)

    @property
    def address(self) -> str:
        """For #customer-address ADDRESS [WHY]: the address, lower-cased as cases keep them."""
        return self.argument.split()[0].strip("<>").lower()

    @property
    def refusal(self) -> str | None:
        """For #deadlock refuse REASON: the reason."""
        return _refusal(self.argument)

    @property
    def reference(self) -> str:
        """For #merge and #adr: the reference first in the argument (a case's upper-cased)."""
        first = self.argument.split()[0]
        return first.upper() if self.name == "merge" else first

    @property
    def posted_on(self) -> date:
        """For #sent-by-post YYYY-MM-DD: the day the letter went by post."""
        return date.fromisoformat(self.argument.split()[0])

    @property
    def case_file_due(self) -> date | None:
        """For #adr SCHEME-REF [YYYY-MM-DD]: the date the scheme wants our case file by."""
        words = self.argument.split()
        return date.fromisoformat(words[1]) if len(words) > 1 else None

    @property
    def outcome(self) -> str:
        """For #adr-outcome: the decision (upheld, partly, not_upheld)."""
        return OUTCOMES[_word(self.argument)]

    @property
    def need(self) -> str:
        """For #needs FORMAT [NOTE]: the format (or none), lower-cased."""
        return _word(self.argument)

    @property
    def rest(self) -> str:
        """The argument after its first word (#adr-outcome's remedy)."""
        parts = self.argument.split(None, 1)
        return parts[1].strip() if len(parts) > 1 else ""


@dataclass(frozen=True)
class StaffReply:
    """A staff reply split into its commands and the text meant for the customer."""

    commands: tuple[Command, ...]
    text: str  # the new part without the command lines
    errors: tuple[str, ...]  # what was wrong, in words for the staff member


def read_commands(new_text: str, role: Role) -> StaffReply:
    """Find, check and authorise the commands in NEW_TEXT (the reply without quotes).

    Commands are read from the top down to the first line of quoted or embedded history
    (a "> " line, an attribution, an embedded message's headers, the first line of our
    letters to staff), which trimming keeps when a reply is written between quotes, or
    misses: no line under it is surely the staff member's own, so a command there is
    refused, never run.
    """
    commands: list[Command] = []
    errors: list[str] = []
    kept: list[str] = []
    lines = new_text.splitlines()
    history = next((i for i in range(len(lines)) if starts_history(lines, i)), len(lines))
    for index, line in enumerate(lines):
        found = _LINE.match(line)
        if found is None:
            kept.append(line)
            continue
        name, argument = found.group(1).lower(), found.group(2)
        spec = COMMANDS.get(name)
        if index >= history:
            kept.append(line)
            if spec is not None:
                errors.append(
                    f"#{name} is below the quoted text, where nothing is read as a command: "
                    "write commands above the quote."
                )
            continue
        if spec is None:
            errors.append(f"#{name} is not a command I know (known: {known()}).")
            continue
        problem = _check_argument(name, argument)
        if spec.needs_argument and not argument:
            problem = f'#{name} needs an argument: "{spec.usage}"'
        if problem:
            errors.append(problem)
        elif role not in spec.roles:
            allowed = " or ".join(r.value.replace("_", " ") + "s" for r in sorted(spec.roles))
            errors.append(
                f"#{name} is for {allowed}; you are listed as {role.value.replace('_', ' ')}."
            )
        else:
            commands.append(Command(name, argument))
    names = [c.name for c in commands if c.name != "release"]  # one line per message released
    if len(set(names)) != len(names):
        errors.append("each command may be given once per reply.")
    return StaffReply(tuple(commands), "\n".join(kept).strip("\n"), tuple(errors))


_REFUSE = re.compile(r"refuse\b[\s:,-]*(.*)", re.IGNORECASE | re.DOTALL)


def _refusal(argument: str) -> str | None:
    """For #deadlock: the reason after `refuse` ("" when none), None when not refusing."""
    found = _REFUSE.match(argument)
    return found.group(1).strip() if found else None


def release_ids(new_text: str) -> list[int]:
    """The numbers "#release ID" lines name (read_commands checks the rest), for the store to
    say which are held messages."""
    ids = []
    for line in new_text.splitlines():
        found = _LINE.match(line)
        word = found.group(2).split()[0].lstrip("#") if found and found.group(2) else ""
        if found and found.group(1).lower() == "release" and word.isdigit():
            ids.append(int(word))
    return ids


def known() -> str:
    """The commands by name, each in quotes (see _LINE)."""
    return ", ".join(f'"#{name}"' for name in COMMANDS)


def _check_argument(name: str, argument: str) -> str | None:
    if name == "updates" and argument:
        word = argument.split()[0].lower()
        if word not in ("weekly", "none") and not (word.isdigit() and 1 <= int(word) <= 20):
            return f"#updates takes 1 to 20 (working days), weekly or none, not {word!r}."
    if name == "release" and argument and not argument.split()[0].lstrip("#").isdigit():
        return f"#release needs the held message's number, not {argument.split()[0]!r}."
    if name == "deadlock" and _refusal(argument) == "":
        return '#deadlock refuse needs a reason: "#deadlock refuse REASON"'
    if name == "adr" and argument:
        words = argument.split()
        if len(words) > 2:
            return '#adr takes the scheme\'s reference and a date: "#adr SCHEME-REF [YYYY-MM-DD]"'
        if len(words) == 2 and not _is_date(words[1]):
            return f"#adr's date is written YYYY-MM-DD (2027-01-31), not {words[1]!r}."
    if name == "adr-outcome" and argument:
        word = _word(argument)
        if word not in OUTCOMES:
            return f"#adr-outcome takes upheld, partly or not-upheld first, not {word!r}."
    if name == "needs" and argument and _word(argument) not in (*FORMATS, NONE):
        return f"#needs takes {', '.join(FORMATS)} or none first, not {_word(argument)!r}."
    if name == "sent-by-post" and argument and not _is_date(argument.split()[0]):
        return f"#sent-by-post takes the day it was posted, YYYY-MM-DD, not {_word(argument)!r}."
    if name == "merge" and argument and len(argument.split()) > 1:
        return '#merge takes one case reference: "#merge CMP-REF"'
    if name in ("new", "customer-address") and argument:
        first = argument.split()[0]
        if not _EMAIL.match(first.strip("<>")):
            what = "the customer's email address" if name == "new" else "an email address"
            return f"#{name} needs {what} first, not {first!r}."
    return None


def _word(argument: str) -> str:
    """The first word of ARGUMENT, lower-cased, without the punctuation a writer adds."""
    return argument.split()[0].lower().rstrip(":,.;")


def _is_date(word: str) -> bool:
    try:
        date.fromisoformat(word)
    except ValueError:
        return False
    return len(word) == 10


def named_cases(new_text: str) -> list[str]:
    """The case references commands in NEW_TEXT name (#merge's), upper-cased: the load stage
    reads those cases for the route."""
    found = []
    for line in new_text.splitlines():
        command = _LINE.match(line)
        if command and command.group(1).lower() == "merge" and command.group(2).split():
            found.append(command.group(2).split()[0].upper())
    return found
