"""``python -m ebmviz run …``: the same as the ``ebmviz`` command (``ebmviz.cli``)."""

import sys

from ebmviz.cli import main

sys.exit(main())
