"""``python -m graph_emulator``: serve the emulator until Ctrl-C (``--help`` lists the options)."""

from graph_emulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
