"""TensorFlow's start-up notices on a machine without a GPU, kept off the exporter's output.

TensorFlow writes them from C++ before its logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach them, and one
of them is an error line ("failed call to cuInit ... CUDA error") that means only that there is no GPU. Everything
else TensorFlow writes to stderr is passed on, after the work it came from.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|rebuild TensorFlow with the appropriate compiler flags"
)


@contextlib.contextmanager
def without_gpu_notices() -> Iterator[None]:
    """Holds what is written to file descriptor 2 while the block runs, then writes it but for the notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            sys.stderr.write("".join(line for line in text.splitlines(keepends=True) if not NOTICES.search(line)))
            sys.stderr.flush()
