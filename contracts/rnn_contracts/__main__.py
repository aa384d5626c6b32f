"""``python -m rnn_contracts``: the same as the ``rnn-contracts`` console script."""
import sys

from rnn_contracts.cli import main

sys.exit(main())
