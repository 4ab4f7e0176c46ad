"""For developers: `python -m mailbot.store.migrations "what changed"` autogenerates a revision.

It compares the models with a scratch SQLite database upgraded to head; check the result
(and run the schema tests on SQLite and PostgreSQL) before committing it.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from alembic import command

from mailbot.store.migrations import config


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
        command.upgrade(config(url=url), "head")
        command.revision(config(url=url), message=argv[0], autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
