"""`python -m hgsearch ...` is the `hgsearch` command (worker processes are started this way)."""

import sys

from hgsearch.search.cli import main

sys.exit(main())
