import sys

try:
    from .orchestration.cli import main
except KeyboardInterrupt:  # Ctrl-C while the libraries load: nothing was started yet
    print("interrupted: nothing was started; rerun the same command", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
