"""``python -m gpviz``: the same as the ``gpviz`` command."""

import sys

from gpviz.cli import main

sys.exit(main())
