import sys

from ess.main import main

sys.exit(main())
