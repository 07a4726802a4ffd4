import sys

from gbench.cli import main

sys.exit(main())
