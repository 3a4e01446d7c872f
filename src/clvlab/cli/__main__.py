"""``python -m clvlab.cli``: the command line without the installed script."""

import sys

from clvlab.cli.app import main

sys.exit(main())
