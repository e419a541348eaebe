import sys

from sturdysearch.cli.main import main

sys.exit(main())
