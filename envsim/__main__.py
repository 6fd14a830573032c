import sys

from envsim.cli import main

sys.exit(main())
