"""`python -m bench`: run every benchmark and print one table."""

import sys

from bench.main import main

sys.exit(main())
