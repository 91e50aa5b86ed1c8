"""``python -m hades.cli``: the ``hades`` command."""

import sys

from hades.cli import main

sys.exit(main())
