"""``python -m gui`` opens the suggestion box."""

import sys

from gui.app import main

sys.exit(main())
