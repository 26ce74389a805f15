"""How every command of the project ends: its exit code, and quietly when its reader went away
(`python -m pipelines.run --help | head -1` closes the pipe early; that is not an error)."""
from __future__ import annotations

import os
import sys


def error_line(e: BaseException) -> int:
    """A command's failure as one line on stderr (the exception's first line, or its type); exit code 2."""
    print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
    return 2


def run(main) -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would print a traceback while flushing at exit: point stdout at /dev/null first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
