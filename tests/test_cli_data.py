"""The ``prepare``, ``folds`` and ``synth`` subcommands, in process and as a real subprocess.

Bad input must end with exit status 2 and exactly one stderr line starting with
``fer-kaggle: error:``, with no traceback, and must leave the --out folder unwritten.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FerFiles, write_csv
from fer_kaggle.cli import main
from fer_kaggle.data.faceset import load_faceset
from fer_kaggle.folds import read_folds

EXIT_BAD_INPUT = 2


def assert_one_error_line(stderr: str) -> None:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr
    assert len(lines) == 1, f"expected one stderr line, got {stderr!r}"
    assert lines[0].startswith("fer-kaggle: error: ")


def assert_clean_failure(result: subprocess.CompletedProcess, out: Path) -> None:
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert_one_error_line(result.stderr)
    assert not out.exists()


# In process.


def test_prepare_prints_summary(fer_files: FerFiles, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "prepared"
    status = main(["prepare", str(fer_files.write_fer2013()), "--out", str(out)])
    stdout = capsys.readouterr().out

    assert status == 0
    assert f"prepared 80 faces (fer2013.csv) into {out}" in stdout
    assert "Disgust" in stdout
    assert "exact duplicates: 0 groups" in stdout
    assert (out / "faces.npz").is_file()


def test_folds_command(fer_files: FerFiles, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "prepared"
    folds = tmp_path / "folds" / "folds.csv"
    main(["prepare", str(fer_files.write_fer2013()), "--out", str(data)])
    status = main(["folds", "--data", str(data), "--k", "3", "--seed", "4", "--out", str(folds)])
    stdout = capsys.readouterr().out
    frame, metadata = read_folds(folds)

    assert status == 0
    assert "wrote 3 folds of 56 training faces" in stdout
    assert sorted(frame["id"].tolist()) == list(range(56))
    assert sorted(set(frame["fold"].tolist())) == [0, 1, 2]
    assert metadata["data_fingerprint"] == load_faceset(data).fingerprint()
    assert metadata["seed"] == 4


def test_folds_command_deterministic(fer_files: FerFiles, tmp_path: Path) -> None:
    data = tmp_path / "prepared"
    main(["prepare", str(fer_files.write_fer2013()), "--out", str(data)])
    outputs = [tmp_path / name / "folds.csv" for name in ("first", "second", "other_seed")]
    for out, seed in zip(outputs, ("0", "0", "1")):
        main(["folds", "--data", str(data), "--k", "4", "--seed", seed, "--out", str(out)])

    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert outputs[0].read_bytes() != outputs[2].read_bytes()


def test_prepare_bad_row_in_process(fer_files: FerFiles, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = fer_files.fer2013_rows()
    rows[3][0] = "7"
    path = write_csv(fer_files.root / "fer2013.csv", ["emotion", "pixels", "Usage"], rows)
    out = tmp_path / "prepared"

    status = main(["prepare", str(path), "--out", str(out)])
    stderr = capsys.readouterr().err
    assert status == EXIT_BAD_INPUT
    assert_one_error_line(stderr)
    assert "row 5" in stderr
    assert not out.exists()


def test_folds_without_prepared_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "folds.csv"
    status = main(["folds", "--data", str(tmp_path / "missing"), "--out", str(out)])
    stderr = capsys.readouterr().err
    assert status == EXIT_BAD_INPUT
    assert_one_error_line(stderr)
    assert "fer-kaggle prepare" in stderr
    assert not out.exists()


def test_folds_k_1(fer_files: FerFiles, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "prepared"
    main(["prepare", str(fer_files.write_fer2013()), "--out", str(data)])
    capsys.readouterr()
    out = tmp_path / "folds.csv"

    status = main(["folds", "--data", str(data), "--k", "1", "--out", str(out)])
    stderr = capsys.readouterr().err
    assert status == EXIT_BAD_INPUT
    assert_one_error_line(stderr)
    assert "k must be an integer >= 2, got 1" in stderr
    assert not out.exists()


def test_synth_then_prepare(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("fer_kaggle.synth", reason="fer_kaggle/synth.py is not written yet")
    synth = tmp_path / "synth"
    status = main(["synth", "--out", str(synth), "--n-train", "40", "--n-public", "9", "--n-private", "11", "--seed", "3"])
    assert status == 0
    assert main(["prepare", str(synth), "--out", str(tmp_path / "prepared")]) == 0

    faces = load_faceset(tmp_path / "prepared")
    assert int(faces.mask("train").sum()) == 40
    assert int(faces.mask("public").sum()) == 9
    assert int(faces.mask("private").sum()) == 11
    assert (faces.labels >= 0).all()
    assert np.isin(faces.labels, range(7)).all()


# As a subprocess.


def test_console_script_prepare(fer_files: FerFiles, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "fer-kaggle"
    if not script.is_file():
        pytest.skip(f"console script not installed beside {sys.executable}; run pip install -e .")
    out = tmp_path / "prepared"
    result = subprocess.run(
        [str(script), "prepare", str(fer_files.write_kaggle_pair()), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["audit.json", "audit.md", "faces.npz", "manifest.json", "solution.csv"]


def test_subprocess_missing_file(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    result = run_cli("prepare", tmp_path / "nowhere" / "fer2013.csv", "--out", out)
    assert_clean_failure(result, out)
    assert "nowhere/fer2013.csv" in result.stderr


def test_subprocess_html_page(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    path.write_text("<html><body>Please sign in</body></html>\n")
    out = tmp_path / "prepared"
    result = run_cli("prepare", path, "--out", out)
    assert_clean_failure(result, out)
    assert "HTML page" in result.stderr


def test_subprocess_bad_test_csv(run_cli, fer_files: FerFiles, tmp_path: Path) -> None:
    folder = fer_files.write_kaggle_pair()
    rows = fer_files.test_rows()
    rows[2][1] = rows[2][1] + " 12"
    write_csv(folder / "test.csv", ["id", "pixels"], rows)
    out = tmp_path / "prepared"

    result = run_cli("prepare", folder, "--out", out)
    assert_clean_failure(result, out)
    assert "row 4" in result.stderr


def test_subprocess_labels_id_not_in_test(run_cli, fer_files: FerFiles, tmp_path: Path) -> None:
    folder = fer_files.write_kaggle_pair()
    rows = fer_files.public_label_rows()
    rows[0][0] = "5"
    write_csv(folder / "public_labels.csv", ["id", "emotion"], rows)
    out = tmp_path / "prepared"

    result = run_cli("prepare", folder, "--out", out)
    assert_clean_failure(result, out)
    assert "not in test.csv" in result.stderr


def test_subprocess_undecodable_image(run_cli, fer_files: FerFiles, tmp_path: Path) -> None:
    root = fer_files.write_image_folders()
    (root / "train" / "fear" / "zz.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "prepared"

    result = run_cli("prepare", root, "--out", out)
    assert_clean_failure(result, out)
    assert "zz.jpg" in result.stderr
