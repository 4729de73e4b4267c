"""service/config_file.py: the TOML file, and one clear line for every mistake in it."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tomllib

import pytest

from service.config import ConfigError
from service.flags import load_config
from service.profiles import DEEPLAB_257, Decode, InputDtype, OutputKind, ResizePolicy, Upscale
from tests.config_files import GOOD_CONFIG, NAMED_FILES, write_config
from tests.paths import ROOT


def test_the_shipped_example_reads_as_documented() -> None:
    config = load_config(["--config", str(ROOT / "examples" / "multi-model.toml")], {})
    assert config.listen == "0.0.0.0:50051"
    assert [(b.name, b.targets) for b in config.backends] == [("local", ("localhost:8500",))]
    assert [m.name for m in config.models] == ["deeplab", "deeplab-lite"] and config.model.name == "deeplab"
    assert config.models[0].profile == DEEPLAB_257
    lite = config.models[1].profile
    assert (lite.input_dtype, lite.input_offset, lite.input_scale) == (InputDtype.FLOAT32, 127.5, 127.5)
    assert (lite.resize, lite.width, lite.height, lite.output) == (ResizePolicy.FIXED, 257, 257, OutputKind.SCORES)
    assert config.models[0].labels[15] == "person" and config.models[1].labels[8] == "cat"
    # The exported graph's serving_scores (float pixels in; class ids and the scores behind them out); the TFLite
    # model's only signature, by its tensors' names.
    exported, tflite = config.models[0].interface, config.models[1].interface
    assert (exported.signature, exported.input_key, exported.output_keys) == (
        "serving_scores",
        "image",
        ("SemanticPredictions", "scores"),
    )
    assert (tflite.signature, tflite.input_key, tflite.output_keys) == (
        "serving_default",
        "sub_7",
        ("ResizeBilinear_3",),
    )


def test_a_file_with_backends_models_and_a_profile_table(tmp_path: pathlib.Path) -> None:
    config = load_config(["--config", write_config(tmp_path, GOOD_CONFIG)], {})
    assert config.listen == "127.0.0.1:6000" and config.max_concurrent_calls == 8
    assert config.backends[0].targets == ("10.0.0.1:8500", "10.0.0.2:8500")
    assert config.model.name == "lite" and config.model.name_at_backend == "deeplab-lite"
    assert config.model.version_label == "stable" and config.model.profile.output == OutputKind.SCORES
    assert config.models[0].name_at_backend == "deeplab" and config.models[0].profile.longest_side == 513


def test_every_shipped_config_gives_the_exported_graph_its_own_input_size() -> None:
    shipped = [ROOT / "deploy" / "gateway.toml", ROOT / "deploy" / "compose" / "gateway.toml"]
    shipped += [ROOT / "deploy" / "k8s" / "base" / "gateway" / "gateway.toml", *(ROOT / "examples").glob("*.toml")]
    for path in shipped:  # read as TOML: the deploy configs name labels mounted beside them at run time
        deeplab = next(m for m in tomllib.loads(path.read_text())["models"] if m["name"] == "deeplab")
        assert deeplab["profile"] == "deeplab-257", path
    # make run names none: its gateway reads serving_scores from the servable (tests/gateway/test_probabilities.py).
    assert "--profile" not in (ROOT / "deploy" / "run-local.sh").read_text()


MISTAKES = [
    ("[server]\nlisten = 5\n", r"server\.listen = 5: must be a string"),
    ("[server]\nworkers = -2\n", r"server\.workers = -2: must be positive"),
    ('[server]\npredict_timeout = "soon"\n', r"server\.predict_timeout = 'soon': must be a number"),
    ('[server]\nlog_level = "LOUD"\n', r"server\.log_level = 'LOUD': use DEBUG, INFO, WARNING or ERROR"),
    ('[server]\nlistn = "x"\n', r"server\.listn: unknown key; accepted: listen, max_image_bytes, "),
    ("[sever]\n", r"sever: unknown key; accepted: server, backends, models, profiles"),
    ('[[models]]\nname = "m"\nlables = "x"\n', r"models\[0\]\.lables: unknown key; accepted: name, default, "),
    ('[[models]]\nname = "m"\n', r"backends: at least one \[\[backends\]\] table is needed"),
    ('[[backends]]\nname = "a"\ntargets = ["h:1"]\n', r"models: at least one \[\[models\]\] table is needed"),
    ('[[models]]\nname = "m"\nbackend = "nope"\n', r"models\[0\]\.backend = 'nope': no such backend; defined: a"),
    ('[[models]]\nname = "m"\n[[models]]\nname = "m"\n', r"models\[1\]\.name = 'm': another model has this name"),
    (
        '[[models]]\nname = "m"\nlabels = "missing.txt"\n',
        r"models\[0\]\.labels = 'missing.txt': cannot read the labels file .*missing\.txt: No such file or directory; "
        r"use a readable UTF-8 text file, one class name a line, class 0 first, relative to the config file's folder",
    ),
    (
        '[[models]]\nname = "m"\nlabels = "utf16.txt"\n',
        r"models\[0\]\.labels = 'utf16.txt': the labels file .*utf16\.txt is not UTF-8 text \(byte 0\); "
        r"use a readable UTF-8 text file, one class name a line, class 0 first",
    ),
    ('[[models]]\nname = "m"\nlabels = "blank.txt"\n', r"labels = 'blank.txt': .* has no labels; use a readable UTF-8"),
    (
        '[server]\ntls_cert = "cert.pem"\n[[models]]\nname = "m"\n',
        r"server\.tls_cert = '.*cert\.pem': needs server\.tls_key too: tls_cert and tls_key go together, or neither",
    ),
    (
        '[server]\ntls_key = "key.pem"\n[[models]]\nname = "m"\n',
        r"server\.tls_key = '.*key\.pem': needs server\.tls_cert",
    ),
    (
        '[server]\ntls_client_ca = "ca.pem"\n[[models]]\nname = "m"\n',
        r"server\.tls_client_ca = '.*ca\.pem': needs server\.tls_cert and server\.tls_key: client certificates",
    ),
    (
        '[[backends]]\nname = "a"\ntargets = ["h:1"]\n[[backends]]\nname = "b"\ntargets = ["h:2"]\ncert = "cert.pem"\n'
        '[[models]]\nname = "m"\nbackend = "a"\n',
        r"backends\[1\]\.cert = '.*cert\.pem': needs backends\[1\]\.key too: a backend's cert and key go together",
    ),
    (
        '[[backends]]\nname = "a"\ntargets = ["h:1"]\nkey = "key.pem"\n[[models]]\nname = "m"\n',
        r"backends\[0\]\.key = '.*key\.pem': needs backends\[0\]\.cert too",
    ),
    (
        '[[backends]]\nname = "a"\ntargets = ["h:1"]\ncert = "cert.pem"\nkey = "key.pem"\n[[models]]\nname = "m"\n',
        r"backends\[0\]\.cert = '.*cert\.pem': needs backends\[0\]\.ca, the CA \(PEM file\) that signed the backend's",
    ),
    ('[[models]]\nname = "m"\nversion = 0\n', r"models\[0\]\.version = 0: must be positive"),
    ('[[models]]\nname = "m"\nversion = "2"\n', r"models\[0\]\.version = '2': must be an integer"),
    ('[[models]]\nname = "m"\nversion = 1\nversion_label = "x"\n', "version and version_label cannot both"),
    ('[[models]]\nname = "m"\ndefault = true\n[[models]]\nname = "n"\ndefault = true\n', "more than one model"),
    ('[[models]]\nname = "m"\nprofile = "nope"\n', r"profile = 'nope': no such profile; defined: auto, deeplab-zoo"),
    ('[[models]]\nname = "m"\nprofile = { resize = "fixed" }\n', r"profile: resize = \"fixed\" needs width"),
    ('[[models]]\nname = "m"\nprofile = { output = "logits" }\n', r"output = 'logits': use \"class_ids\" or "),
    ('[[models]]\nname = "m"\nprofile = { input_scale = 2.0 }\n', 'apply to input_dtype = "float32"'),
    ('[[models]]\nname = "m"\nprofile = { width = 3 }\n', 'width and height apply to resize = "fixed"'),
    ('[[models]]\nname = "m"\nthis is not toml\n', r"not valid TOML: Expected .* \(at line \d+, column \d+\)"),
    ("[server]\nmax_image_bytes = 2000000000\n", r"server\.max_image_bytes = 2000000000: must be positive and at most"),
    ("[server]\npredict_timeout = nan\n", r"server\.predict_timeout = nan: must be positive"),
    ('[server]\nlisten = "50051"\n', r"server\.listen = '50051': use host:port"),
    ("[profiles.deeplab-zoo]\n", r"profiles\.deeplab-zoo: is built in"),
    (
        '[[models]]\nname = "m"\nprofile = { resize = "fixed", width = 9, height = 9, longest_side = 9 }\n',
        "longest_side applies to resize",
    ),
    ('[[models]]\nname = "m"\nprofile = { longest_side = 100000 }\n', "must be positive and at most 8192 pixels"),
]


BACKEND = '[[backends]]\nname = "a"\ntargets = ["localhost:8500"]\n'


@pytest.mark.parametrize(("text", "message"), MISTAKES)
def test_each_mistake_is_one_line_naming_the_file_the_key_and_what_is_accepted(
    tmp_path: pathlib.Path, text: str, message: str
) -> None:
    needs_backend = "[[models]]" in text and "[[backends]]" not in text and "backends:" not in message
    path = write_config(tmp_path, (BACKEND if needs_backend else "") + text)
    for name, content in NAMED_FILES.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(["--config", path], {})
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ('["nohost"]', r"targets\[0\] = 'nohost': use host:port"),
        ('["h:99999"]', "the port must be a number from 1 to 65535"),
        ('["::1:8500"]', r"use host:port \(\[v6 address\]:port\)"),
        ('[" h:1"]', "use host:port"),
        ('["dns:"]', "needs an address after its scheme"),
        ('["h:1", "dns:///x:2"]', "a target URI must be the backend's only target"),
        ("[]", "needs one or more targets"),
    ],
)
def test_bad_backend_targets(tmp_path: pathlib.Path, targets: str, message: str) -> None:
    path = write_config(tmp_path, f'[[backends]]\nname = "a"\ntargets = {targets}\n[[models]]\nname = "m"\n')
    with pytest.raises(ConfigError, match=message):
        load_config(["--config", path], {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BACKEND + '[[models]]\nname = "m"\nbackend = "b"\n', "models[0].backend = 'b': no such backend; defined: a"),
        # Once a traceback and exit status 1 (a UnicodeDecodeError).
        (
            BACKEND + '[[models]]\nname = "m"\nlabels = "utf16.txt"\n',
            "models[0].labels = 'utf16.txt': the labels file {dir}/utf16.txt is not UTF-8 text (byte 0); use a "
            "readable UTF-8 text file, one class name a line, class 0 first, relative to the config file's folder "
            "({dir})",
        ),
    ],
)
def test_the_service_exits_2_with_one_line_on_a_bad_file(tmp_path: pathlib.Path, text: str, message: str) -> None:
    (tmp_path / "utf16.txt").write_bytes(NAMED_FILES["utf16.txt"])
    path = write_config(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "service", "--config", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"service: error: {path}: {message.format(dir=tmp_path)}\n"


def test_a_profile_s_speed_options_and_interface_and_a_model_s_own_keys_winning(tmp_path: pathlib.Path) -> None:
    text = """
[[backends]]
name = "local"
targets = ["localhost:8500"]

[profiles.fast]
input_dtype = "uint8"
resize = "fixed"
width = 257
height = 257
decode = "reduced"
upscale = "nearest"
signature = "serving_default"
scores_key = "scores"

[[models]]
name = "deeplab"
profile = "fast"

[[models]]
name = "other"
profile = "deeplab-257"
signature = "mine"
scores_key = "logits"
"""
    config = load_config(["--config", write_config(tmp_path, text)], {})
    fast, other = config.models[0], config.models[1]
    assert (fast.profile.decode, fast.profile.upscale) == (Decode.REDUCED, Upscale.NEAREST)
    # Nearest neighbour needs no scores, so they are not asked for.
    assert (fast.interface.signature, fast.interface.output_keys) == ("serving_default", ("SemanticPredictions",))
    assert (other.interface.signature, other.interface.input_key, other.interface.output_keys) == (
        "mine",
        "image",
        ("SemanticPredictions", "logits"),
    )
    flags = load_config(["--profile", "deeplab-257", "--signature", "s", "--scores-key", "k"], {}).model.interface
    assert (flags.signature, flags.input_key, flags.output_keys) == ("s", "image", ("SemanticPredictions", "k"))
    bad = text.replace('upscale = "nearest"', 'upscale = "bicubic"')
    with pytest.raises(ConfigError, match=r'profiles.fast.upscale = \'bicubic\': use "scores" or "nearest"'):
        load_config(["--config", write_config(tmp_path, bad)], {})
    both = text.replace('input_dtype = "uint8"', 'input_dtype = "float32"\noutput = "scores"')
    with pytest.raises(ConfigError, match=r'profiles.fast: scores_key applies to output = "class_ids"'):
        load_config(["--config", write_config(tmp_path, both)], {})
