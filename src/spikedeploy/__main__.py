"""``python -m spikedeploy``: the same command line as ``spikedeploy``."""
import sys

from spikedeploy.deploy.cli import main

sys.exit(main())
