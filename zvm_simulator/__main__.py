"""``python -m zvm_simulator``: the same as ``zvm-simulator``."""

from zvm_simulator.cli import main

main()
