"""`python -m tfgreen`: the same as the `tfgreen` command."""

import sys

from tfgreen.cli import main

sys.exit(main())
