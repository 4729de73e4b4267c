"""The exporter, run as users run it (python -m exporter), on the real frozen graph."""

from __future__ import annotations

import io
import json
import pathlib
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from tests.helpers import run_exporter
from tests.paths import CAT, FROZEN_GRAPH, IMAGES, PERSON, TF_SIDE


def _segment(saved_model: pathlib.Path, *images: pathlib.Path) -> dict[str, dict[str, float]]:
    result = subprocess.run(
        [sys.executable, str(TF_SIDE / "segment_savedmodel.py"), str(saved_model), *map(str, images)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _leftovers(base: pathlib.Path) -> list[str]:
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_exported_servable_segments_the_shared_photos(servable_base: pathlib.Path) -> None:
    assert (servable_base / "1" / "saved_model.pb").is_file()
    fractions = _segment(servable_base / "1", IMAGES / "astronaut.png", IMAGES / "chelsea.png")
    astronaut = fractions[str(IMAGES / "astronaut.png")]
    chelsea = fractions[str(IMAGES / "chelsea.png")]
    assert astronaut.get(str(PERSON), 0.0) >= 0.40, astronaut
    assert chelsea.get(str(CAT), 0.0) >= 0.70, chelsea


def test_export_prints_the_signature_and_numbers_versions_upwards(tmp_path: pathlib.Path) -> None:
    base = tmp_path / "deeplab"
    first = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base)
    assert first.returncode == 0, first.stderr
    assert "signature 'serving_default' [serve]" in first.stdout
    assert "ImageTensor: uint8 [1, -1, -1, 3]" in first.stdout
    assert "SemanticPredictions: int64 [1, -1, -1]" in first.stdout
    second = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base)
    assert second.returncode == 0, second.stderr
    assert _leftovers(base) == ["1", "2"]


def test_model_zoo_tarball_exports_the_same_model(tmp_path: pathlib.Path, servable_base: pathlib.Path) -> None:
    tarball = tmp_path / "deeplabv3_mnv2_pascal_train_aug_2018_01_29.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(FROZEN_GRAPH, arcname="deeplabv3_mnv2_pascal_train_aug/frozen_inference_graph.pb")
        notes = b"model_checkpoint_path: model.ckpt-30000\n"
        info = tarfile.TarInfo("deeplabv3_mnv2_pascal_train_aug/checkpoint")
        info.size = len(notes)
        archive.addfile(info, io.BytesIO(notes))
    base = tmp_path / "zoo"
    result = run_exporter("--frozen-graph", tarball, "--export-dir", base, "--version", "7")
    assert result.returncode == 0, result.stderr
    assert _leftovers(base) == ["7"]
    image = IMAGES / "chelsea.png"
    assert _segment(base / "7", image) == _segment(servable_base / "1", image)


def _not_deeplab_graph(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "other.pb"
    subprocess.run([sys.executable, str(TF_SIDE / "make_graph.py"), str(path)], check=True, timeout=120)
    return path


def _tarball_without_graph(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "empty_zoo.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("model/checkpoint")
        archive.addfile(info, io.BytesIO(b""))
    return path


def _random_bytes(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "noise.pb"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def _text_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "notes.pb"
    path.write_text("this is not a graph\n")
    return path


@pytest.mark.parametrize(
    ("make_input", "expected"),
    [
        (_random_bytes, "not a TensorFlow GraphDef"),
        (_text_file, "not a"),
        (_not_deeplab_graph, "not a DeepLab frozen graph: no ImageTensor:0 or SemanticPredictions:0"),
        (_tarball_without_graph, "the archive holds no frozen_inference_graph.pb"),
        (lambda tmp: tmp / "missing.pb", "no such file"),
    ],
    ids=["random-bytes", "text", "other-graph", "tarball-without-graph", "missing-file"],
)
def test_bad_input_fails_with_one_clear_line_and_writes_nothing(tmp_path: pathlib.Path, make_input, expected) -> None:
    base = tmp_path / "out"
    result = run_exporter("--frozen-graph", make_input(tmp_path), "--export-dir", base)
    assert result.returncode == 1
    line = _last_line(result.stderr)
    assert line.startswith("exporter: error: ") and expected in line, result.stderr[-2000:]
    assert _leftovers(base) == []


def test_existing_version_is_refused_and_kept(tmp_path: pathlib.Path) -> None:
    base = tmp_path / "deeplab"
    (base / "3").mkdir(parents=True)
    (base / "3" / "marker").write_text("keep me")
    result = run_exporter("--frozen-graph", FROZEN_GRAPH, "--export-dir", base, "--version", "3")
    assert result.returncode == 1
    assert "already exists; versions are never overwritten" in _last_line(result.stderr)
    assert _leftovers(base) == ["3"]
    assert (base / "3" / "marker").read_text() == "keep me"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_export_leaves_nothing(tmp_path: pathlib.Path, sig: signal.Signals) -> None:
    base = tmp_path / "deeplab"
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--frozen-graph", str(FROZEN_GRAPH), "--export-dir", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    # Interrupt while the staging directory exists, i.e. in the middle of writing or verifying.
    while time.monotonic() < deadline and not any(p.name.startswith(".tmp") for p in base.glob("*")):
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, stderr
    assert _leftovers(base) == [], stderr[-2000:]
