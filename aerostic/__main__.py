"""``python -m aerostic`` runs the command line."""

import sys

from aerostic.cli import main

sys.exit(main())
