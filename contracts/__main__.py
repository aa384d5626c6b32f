"""``python -m contracts``: the same as the ``rnn-contracts`` console script."""
import sys

from contracts.cli import main

sys.exit(main())
