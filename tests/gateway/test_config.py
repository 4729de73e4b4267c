"""The configuration: flags, SEGMENTATION_* variables, the TOML file, and one clear line for every mistake."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import jsonschema
import pytest

from service.config import BackendConfig, Config, ConfigError, ModelConfig, Shadow, Variant
from service.config_schema import schema_text
from service.flags import FLAGS, check_config, load_config
from service.profiles import DEEPLAB_257, DEEPLAB_ZOO, Decode, InputDtype, OutputKind, Profile, ResizePolicy, Upscale
from service.settings import declared, shown
from tests.paths import LABELS, ROOT

pytestmark = pytest.mark.unit  # make test-unit: in-process, nothing but the venv

GOOD = f"""
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


def write(tmp_path: pathlib.Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


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
    config = load_config(["--config", write(tmp_path, GOOD)], {})
    assert config.listen == "127.0.0.1:6000" and config.max_concurrent_calls == 8
    assert config.backends[0].targets == ("10.0.0.1:8500", "10.0.0.2:8500")
    assert config.model.name == "lite" and config.model.name_at_backend == "deeplab-lite"
    assert config.model.version_label == "stable" and config.model.profile.output == OutputKind.SCORES
    assert config.models[0].name_at_backend == "deeplab" and config.models[0].profile.longest_side == 513


def test_flags_win_over_variables_which_win_over_the_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, GOOD)
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
    assert load_config([], {}).model.profile == DEEPLAB_ZOO
    assert load_config(["--profile", "deeplab-257"], {}).model.profile == DEEPLAB_257
    native = load_config([], {"SEGMENTATION_PROFILE": "deeplab-257"}).model.profile
    assert (native.resize, native.width, native.height) == (ResizePolicy.FIXED, 257, 257)
    assert load_config(["--profile", "deeplab-zoo", "--input-size", "300"], {}).model.profile.longest_side == 300
    with pytest.raises(ConfigError, match=r"--profile='mobi': no such profile; built in: deeplab-zoo, deeplab-257"):
        load_config(["--profile", "mobi"], {})
    with pytest.raises(ConfigError, match=r"SEGMENTATION_INPUT_SIZE applies to the deeplab-zoo profile, not deep"):
        load_config(["--profile", "deeplab-257"], {"SEGMENTATION_INPUT_SIZE": "300"})


def test_every_shipped_config_gives_the_exported_graph_its_own_input_size() -> None:
    shipped = [ROOT / "deploy" / "gateway.toml", ROOT / "deploy" / "compose" / "gateway.toml"]
    shipped += [ROOT / "deploy" / "k8s" / "base" / "gateway" / "gateway.toml", *(ROOT / "examples").glob("*.toml")]
    for path in shipped:  # read as TOML: the deploy configs name labels mounted beside them at run time
        deeplab = next(m for m in tomllib.loads(path.read_text())["models"] if m["name"] == "deeplab")
        assert deeplab["profile"] == "deeplab-257", path
    assert "--profile=deeplab-257" in (ROOT / "deploy" / "run-local.sh").read_text()


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
    ('[[models]]\nname = "m"\nprofile = "nope"\n', r"profile = 'nope': no such profile; defined: deeplab-zoo"),
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
# Files the mistakes above name, written next to the config file: TLS files that can be read (their content is
# checked later, by gRPC), a labels file that is not UTF-8 (UTF-16 with its byte order mark) and one of blank lines.
FILES = {
    "cert.pem": b"PEM",
    "key.pem": b"PEM",
    "ca.pem": b"PEM",
    "utf16.txt": b"\xff\xfe\x00bad",
    "blank.txt": b"\n \n",
}


@pytest.mark.parametrize(("text", "message"), MISTAKES)
def test_each_mistake_is_one_line_naming_the_file_the_key_and_what_is_accepted(
    tmp_path: pathlib.Path, text: str, message: str
) -> None:
    needs_backend = "[[models]]" in text and "[[backends]]" not in text and "backends:" not in message
    path = write(tmp_path, (BACKEND if needs_backend else "") + text)
    for name, content in FILES.items():
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
    path = write(tmp_path, f'[[backends]]\nname = "a"\ntargets = {targets}\n[[models]]\nname = "m"\n')
    with pytest.raises(ConfigError, match=message):
        load_config(["--config", path], {})


def test_model_flags_cannot_be_mixed_with_a_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, GOOD)
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
    for name, content in FILES.items():
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
        load_config(["--config", write(tmp_path, GOOD), "--tls-cert", cert], {})
    # Built without flags or a file: the setting's name.
    with pytest.raises(ConfigError, match=r"^tls_cert = 'c\.pem': needs tls_key too"):
        check_config(Config(tls_cert="c.pem"))
    with pytest.raises(ConfigError, match=rf"^--labels='{u}': the labels file {u} is not UTF-8 text \(byte 0\); use"):
        load_config(["--labels", utf16], {})


def test_a_labels_file_may_start_with_a_utf8_byte_order_mark(tmp_path: pathlib.Path) -> None:
    (tmp_path / "labels.txt").write_bytes(b"\xef\xbb\xbfbackground\nperson\n")
    assert load_config(["--labels", str(tmp_path / "labels.txt")], {}).model.labels == ("background", "person")


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
    (tmp_path / "utf16.txt").write_bytes(FILES["utf16.txt"])
    path = write(tmp_path, text)
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
    config = load_config(["--config", write(tmp_path, text)], {})
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
        load_config(["--config", write(tmp_path, bad)], {})
    both = text.replace('input_dtype = "uint8"', 'input_dtype = "float32"\noutput = "scores"')
    with pytest.raises(ConfigError, match=r'profiles.fast: scores_key applies to output = "class_ids"'):
        load_config(["--config", write(tmp_path, both)], {})


def test_the_fair_share_settings_by_flag_variable_and_file(tmp_path: pathlib.Path) -> None:
    defaults = load_config([], {})
    assert defaults.max_concurrent_calls == 4 * (os.cpu_count() or 2)  # four places per core
    assert (defaults.max_calls_per_caller, defaults.max_queue_wait_s) == (16, 2.0)
    flags = load_config(["--max-calls-per-caller", "4", "--max-queue-wait", "0.5"], {})
    assert (flags.max_calls_per_caller, flags.max_queue_wait_s) == (4, 0.5)
    assert load_config([], {"SEGMENTATION_MAX_QUEUE_WAIT": "1.5"}).max_queue_wait_s == 1.5
    text = GOOD.replace("max_concurrent_calls = 8", "max_concurrent_calls = 8\nmax_calls_per_caller = 2")
    assert load_config(["--config", write(tmp_path, text)], {}).max_calls_per_caller == 2
    with pytest.raises(ConfigError, match=r"--max-queue-wait='0': must be positive"):
        load_config(["--max-queue-wait", "0"], {})


# The declarations are the one list of keys: the schema, the flags and the docs are held to them.

SCHEMA_PATH = ROOT / "docs" / "config.schema.json"
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text()


def _docs_toml_sample() -> str:
    section = CONFIG_DOC.split("## Configuration file", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_published_schema_is_the_one_the_declarations_make() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "run make schema"


def test_every_shipped_config_and_the_docs_sample_meet_the_schema_and_a_mistake_does_not() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    shipped = sorted([*(ROOT / "deploy").rglob("*.toml"), *(ROOT / "examples").glob("*.toml")])
    assert len(shipped) >= 6, shipped
    for path in shipped:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_toml(path))]
        assert not errors, (path, errors)
    sample = tomllib.loads(_docs_toml_sample())
    assert not list(validator.iter_errors(sample))
    # Each of these is a mistake the gateway refuses at start; an editor with the schema marks it as it is typed.
    mistakes = [
        {"server": {"listn": "x"}},
        {"server": {"predict_timeout": "soon"}},
        {"server": {"max_image_bytes": 0}},
        {"server": {"log_format": "xml"}},
        {"backends": [{"name": "a"}]},
        {"models": [{"backend": "a"}]},
        {"models": [{"name": "m", "profile": {"upscale": "bicubic"}}]},
        {"models": [{"name": "m", "profile": {"longest_side": 100000}}]},
        {"models": [{"name": "m", "variants": [{"name": "v"}]}]},
        {"models": [{"name": "m", "shadow": {"variant": "v", "percent": 0}}]},
        {"profiles": {"p": {"width": "wide"}}},
    ]
    for mistake in mistakes:
        assert list(validator.iter_errors(mistake)), mistake


def _toml(path: pathlib.Path) -> dict[str, object]:
    return tomllib.loads(path.read_text())


def test_every_flag_is_in_the_docs_table_with_its_default_and_every_key_in_the_docs_sample() -> None:
    rows = [line for line in CONFIG_DOC.split("## Configuration file", 1)[0].splitlines() if line.startswith("| `--")]
    documented = {}
    for row in rows:
        names, default = row.split("|")[1], row.split("|")[2].replace("`", "")
        for name in re.findall(r"`--([a-z-]+)`", names):
            documented[name] = default
    flags = {flag.name: flag for flag in FLAGS}
    assert set(documented) == {*flags, "config"}, set(documented) ^ {*flags, "config"}
    for name, flag in flags.items():
        told = shown(flag.item)
        assert told in documented[name], (name, told, documented[name])
        assert (flag.item.key.flag != "") == (flag.owner is not Config), name
    sample = _docs_toml_sample()
    for cls in (Config, BackendConfig, ModelConfig, Variant, Shadow, Profile):
        missing = [item.name for item in declared(cls) if not re.search(rf"\b{item.name}\b", sample)]
        assert not missing, (cls.__name__, missing)


def test_help_tells_each_flag_s_default_from_its_declaration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    text = " ".join(result.stdout.split())
    assert "--max-image-bytes MAX_IMAGE_BYTES largest accepted image in bytes (default 20 MiB)" in text
    assert "--input-size INPUT_SIZE longest side of the model input in pixels" in text
    assert "(default 513) (not with --config)" in text
    assert "--workers WORKERS threads for the CPU stages (decode, resize, encode) (default one per core)" in text
