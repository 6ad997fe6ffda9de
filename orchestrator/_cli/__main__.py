"""``python -m orchestrator._cli``: the ``claude-scope`` command."""

import sys

from . import main

if __name__ == "__main__":  # imported (a walk of the package), it runs nothing
    sys.exit(main())
