import sys

from callwright.cli import main

sys.exit(main())
