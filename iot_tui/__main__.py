import sys

from iot_tui.cli import main

sys.exit(main())
