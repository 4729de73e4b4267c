"""TensorFlow's start-up notices on a machine without a GPU, kept off the exporter's output.

TensorFlow writes them from C++ before its logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach them, and one
of them is an error line ("failed call to cuInit ... CUDA error") that means only that there is no GPU. Everything
else written to stderr meanwhile is passed on as it comes, so that a fatal message before a crash is still seen.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

NOTICES = re.compile(
    rb"All log messages before absl::InitializeLog\(\) is called"
    rb"|oneDNN custom operations are on"
    rb"|Could not find cuda drivers on your machine"
    rb"|failed call to cuInit"
    rb"|Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|This TensorFlow binary is optimized to use available CPU instructions"
    rb"|rebuild TensorFlow with the appropriate compiler flags"
)


@contextlib.contextmanager
def without_gpu_notices() -> Iterator[None]:
    """Sends what is written to file descriptor 2 while the block runs through a filter, line by line."""
    sys.stderr.flush()
    saved = os.dup(2)
    reading, writing = os.pipe()
    os.dup2(writing, 2)
    os.close(writing)

    def forward() -> None:
        with os.fdopen(reading, "rb") as lines:
            for line in lines:
                if not NOTICES.search(line):
                    os.write(saved, line)

    forwarder = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closed: the forwarder reads to its end and stops
        forwarder.join(10)
        os.close(saved)
