"""``python -m orchestrator.registrar ha1 ...`` (same as ``hotline registrar``)."""

import sys

from .cli import main

sys.exit(main())
