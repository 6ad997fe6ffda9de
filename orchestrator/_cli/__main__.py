"""``python -m orchestrator._cli``: the ``claude-scope`` command."""

import sys

from . import main

sys.exit(main())
