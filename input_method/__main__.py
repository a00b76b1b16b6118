"""``python -m input_method`` is the ``ime`` command."""

import sys

from input_method.cli import main

sys.exit(main())
