import sys

from sextant.cli import main

sys.exit(main())
