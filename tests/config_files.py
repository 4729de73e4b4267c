"""Config files for the configuration's tests: a good one with every kind of table, and writing one out."""

from __future__ import annotations

import pathlib

from tests.paths import LABELS

GOOD_CONFIG = f"""
[server]
listen = "127.0.0.1:6000"
max_concurrent_calls = 8

[[backends]]
name = "a"
targets = ["10.0.0.1:8500", "10.0.0.2:8500"]

[[backends]]
name = "b"
targets = "dns:///tfserving.models.svc.cluster.local:8500"

[[models]]
name = "deeplab"
backend = "a"
labels = "{LABELS}"

[[models]]
name = "lite"
default = true
backend = "b"
served_name = "deeplab-lite"
input_key = "sub_7"
output_key = "ResizeBilinear_3"
version_label = "stable"

[models.profile]
input_dtype = "float32"
input_offset = 127.5
input_scale = 127.5
resize = "fixed"
width = 257
height = 257
output = "scores"
"""


def write_config(tmp_path: pathlib.Path, text: str) -> str:
    """`text` as gateway.toml in `tmp_path`; its path."""
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


# Files that config files in the tests name, written next to them: TLS files that can be read (their content is
# checked later, by gRPC), a labels file that is not UTF-8 (UTF-16 with its byte order mark) and one of blank lines.
NAMED_FILES = {
    "cert.pem": b"PEM",
    "key.pem": b"PEM",
    "ca.pem": b"PEM",
    "utf16.txt": b"\xff\xfe\x00bad",
    "blank.txt": b"\n \n",
}
