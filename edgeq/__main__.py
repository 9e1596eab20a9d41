"""`python -m edgeq ...` is the `edgeq` command."""
import sys

from edgeq.cli import main

sys.exit(main())
