"""The Node, Java, Scala and Go examples, built from the generated stubs, against the live gateway."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

from tests.helpers import ServerProcess
from tests.paths import IMAGES, ROOT

LANGUAGES = ["node", "java", "scala", "go"]


@pytest.fixture(scope="session")
def built() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "clients" / "build.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def run(language: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "clients" / "run.sh"), language, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_finds_the_person_in_astronaut(built, gateway: ServerProcess, language: str) -> None:
    result = run(language, "--server", gateway.target, str(IMAGES / "astronaut.png"))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].endswith("astronaut.png: 512x512, model deeplab v1"), lines
    person = next(line for line in lines if line.split()[0] == "person")
    assert float(person.split()[1].rstrip("%")) > 40


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_reports_a_refused_image(built, gateway: ServerProcess, language: str, tmp_path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"no image here")
    # The server flag after the image, which every example accepts.
    result = run(language, str(bad), "--server", gateway.target)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "error" in last and "not an image" in last
    assert any(code in last for code in ("INVALID_ARGUMENT", "InvalidArgument"))


def test_run_sh_without_arguments_prints_its_usage() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "clients" / "run.sh")], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2 and result.stderr.startswith("usage: clients/run.sh node|java|scala|go")


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_writes_a_cut_out_of_the_cat(built, gateway: ServerProcess, language: str, tmp_path) -> None:
    out = tmp_path / f"{language}-cutout.png"
    result = run(language, "--cutout", str(out), str(IMAGES / "chelsea.png"), "--server", gateway.target)
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout.splitlines()[-1]
    assert said.startswith("cut-out: ") and said.endswith(f"written to {out}"), said
    width, height = (int(side) for side in said.split()[1].split("x"))
    picture = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert picture is not None and picture.shape == (height, width, 4)
    assert set(np.unique(picture[:, :, 3])) == {0, 255}  # hard edges: the cat's mask, cropped to it
