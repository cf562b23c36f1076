"""`python -m harness ...`: see harness/cli.py."""

import faulthandler
import sys

from harness.cli import main

# A crash inside TensorFlow or HDF5 (SIGSEGV, SIGABRT) then leaves the Python stack of every thread
# in the run's log (a sweep's <name>-seed<s>.log) instead of only "killed by SIGSEGV".
faulthandler.enable()
sys.exit(main())
