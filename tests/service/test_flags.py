"""service/flags.py: flags and SEGMENTATION_* variables over the file, the one model they describe, and the checks
across keys.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from service.config import Config, ConfigError
from service.flags import check_config, load_config
from service.profiles import AUTO, DEEPLAB_257, DEEPLAB_ZOO, ResizePolicy
from tests.config_files import GOOD_CONFIG, NAMED_FILES, write_config
from tests.paths import LABELS, ROOT


def test_flags_win_over_variables_which_win_over_the_file(tmp_path: pathlib.Path) -> None:
    path = write_config(tmp_path, GOOD_CONFIG)
    env = {"SEGMENTATION_CONFIG": path, "SEGMENTATION_MAX_CONCURRENT_CALLS": "16", "SEGMENTATION_WORKERS": "3"}
    config = load_config(["--max-concurrent-calls", "32"], env)
    assert (config.max_concurrent_calls, config.workers, config.listen) == (32, 3, "127.0.0.1:6000")


def test_config_flags_win_over_environment_which_wins_over_defaults() -> None:
    env = {"SEGMENTATION_BACKEND": "tfs:8500", "SEGMENTATION_INPUT_SIZE": "257", "SEGMENTATION_LABELS": str(LABELS)}
    config = load_config(["--input-size", "321"], env)
    assert config.backends[0].targets == ("tfs:8500",)
    assert config.model.profile.longest_side == 321
    assert config.model.labels[15] == "person" and config.model.label(99) == "class_99"
    assert load_config([], {}).listen == "0.0.0.0:50051"
    with pytest.raises(ConfigError, match="SEGMENTATION_STREAM_WINDOW='0'"):
        load_config([], {"SEGMENTATION_STREAM_WINDOW": "0"})
    with pytest.raises(ConfigError, match="cannot read the labels file"):
        load_config(["--labels", "/nonexistent/labels.txt"], {})


def test_a_built_in_profile_by_flag_or_variable() -> None:
    assert load_config([], {}).model.profile == AUTO  # read from the servable
    assert load_config(["--profile", "deeplab-zoo"], {}).model.profile == DEEPLAB_ZOO
    # A profile key by flag asks for deeplab-zoo's settings so changed, not for the servable's.
    assert load_config(["--input-size", "300"], {}).model.profile == replace(DEEPLAB_ZOO, longest_side=300)
    with pytest.raises(ConfigError, match=r"--input-size applies to the deeplab-zoo profile, not auto"):
        load_config(["--profile", "auto", "--input-size", "300"], {})
    assert load_config(["--profile", "deeplab-257"], {}).model.profile == DEEPLAB_257
    native = load_config([], {"SEGMENTATION_PROFILE": "deeplab-257"}).model.profile
    assert (native.resize, native.width, native.height) == (ResizePolicy.FIXED, 257, 257)
    assert load_config(["--profile", "deeplab-zoo", "--input-size", "300"], {}).model.profile.longest_side == 300
    with pytest.raises(ConfigError, match=r"--profile='mobi': no such profile; built in: auto, deeplab-zoo, deep"):
        load_config(["--profile", "mobi"], {})
    with pytest.raises(ConfigError, match=r"SEGMENTATION_INPUT_SIZE applies to the deeplab-zoo profile, not deep"):
        load_config(["--profile", "deeplab-257"], {"SEGMENTATION_INPUT_SIZE": "300"})


def test_model_flags_cannot_be_mixed_with_a_file(tmp_path: pathlib.Path) -> None:
    path = write_config(tmp_path, GOOD_CONFIG)
    with pytest.raises(ConfigError, match=r"--model-name cannot be combined with a config file"):
        load_config(["--config", path, "--model-name", "x"], {})
    with pytest.raises(ConfigError, match=r"SEGMENTATION_BACKEND cannot be combined with a config file"):
        load_config(["--config", path], {"SEGMENTATION_BACKEND": "h:1"})


def test_flags_are_checked_as_the_file_is() -> None:
    with pytest.raises(ConfigError, match=r"--backend='tfserving': use host:port"):
        load_config(["--backend", "tfserving"], {})
    with pytest.raises(ConfigError, match=r"SEGMENTATION_LABELS='/nonexistent': cannot read the labels file"):
        load_config([], {"SEGMENTATION_LABELS": "/nonexistent"})


def test_settings_checked_together_name_the_flag_or_variable_that_set_them(tmp_path: pathlib.Path) -> None:
    for name, content in NAMED_FILES.items():
        (tmp_path / name).write_bytes(content)
    cert, key, ca, utf16 = (str(tmp_path / name) for name in ("cert.pem", "key.pem", "ca.pem", "utf16.txt"))
    c, k, a, u = (re.escape(path) for path in (cert, key, ca, utf16))  # as they appear in the patterns
    with pytest.raises(ConfigError, match=rf"^--tls-cert='{c}': needs --tls-key too: tls_cert and tls_key go"):
        load_config(["--tls-cert", cert], {})
    with pytest.raises(ConfigError, match=rf"^SEGMENTATION_TLS_KEY='{k}': needs SEGMENTATION_TLS_CERT too"):
        load_config([], {"SEGMENTATION_TLS_KEY": key})
    with pytest.raises(ConfigError, match=rf"^--tls-client-ca='{a}': needs --tls-cert and --tls-key: client"):
        load_config(["--tls-client-ca", ca], {})
    with pytest.raises(ConfigError, match=rf"^--backend-cert='{c}': needs --backend-key too: a backend's cert"):
        load_config(["--backend-cert", cert], {})
    with pytest.raises(ConfigError, match=rf"^SEGMENTATION_BACKEND_CERT='{c}': needs SEGMENTATION_BACKEND_CA, the"):
        load_config([], {"SEGMENTATION_BACKEND_CERT": cert, "SEGMENTATION_BACKEND_KEY": key})
    # With a config file, a server setting given by a flag is still named by the flag, not by the file.
    with pytest.raises(ConfigError, match=rf"^--tls-cert='{c}': needs --tls-key too"):
        load_config(["--config", write_config(tmp_path, GOOD_CONFIG), "--tls-cert", cert], {})
    # Built without flags or a file: the setting's name.
    with pytest.raises(ConfigError, match=r"^tls_cert = 'c\.pem': needs tls_key too"):
        check_config(Config(tls_cert="c.pem"))
    with pytest.raises(ConfigError, match=rf"^--labels='{u}': the labels file {u} is not UTF-8 text \(byte 0\); use"):
        load_config(["--labels", utf16], {})


def test_a_labels_file_may_start_with_a_utf8_byte_order_mark(tmp_path: pathlib.Path) -> None:
    (tmp_path / "labels.txt").write_bytes(b"\xef\xbb\xbfbackground\nperson\n")
    assert load_config(["--labels", str(tmp_path / "labels.txt")], {}).model.labels == ("background", "person")


def test_the_fair_share_settings_by_flag_variable_and_file(tmp_path: pathlib.Path) -> None:
    defaults = load_config([], {})
    assert defaults.max_concurrent_calls == 4 * (os.cpu_count() or 2)  # four places per core
    assert (defaults.max_calls_per_caller, defaults.max_queue_wait_s) == (16, 2.0)
    flags = load_config(["--max-calls-per-caller", "4", "--max-queue-wait", "0.5"], {})
    assert (flags.max_calls_per_caller, flags.max_queue_wait_s) == (4, 0.5)
    assert load_config([], {"SEGMENTATION_MAX_QUEUE_WAIT": "1.5"}).max_queue_wait_s == 1.5
    text = GOOD_CONFIG.replace("max_concurrent_calls = 8", "max_concurrent_calls = 8\nmax_calls_per_caller = 2")
    assert load_config(["--config", write_config(tmp_path, text)], {}).max_calls_per_caller == 2
    with pytest.raises(ConfigError, match=r"--max-queue-wait='0': must be positive"):
        load_config(["--max-queue-wait", "0"], {})


def test_help_tells_each_flag_s_default_from_its_declaration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    text = " ".join(result.stdout.split())
    assert "--max-image-bytes MAX_IMAGE_BYTES largest accepted image in bytes (default 20 MiB)" in text
    assert "--input-size INPUT_SIZE longest side of the model input in pixels" in text
    assert "(default 513) (not with --config)" in text
    assert "--workers WORKERS threads for the CPU stages (decode, resize, encode) (default one per core)" in text
