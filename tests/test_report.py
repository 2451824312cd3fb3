"""The static HTML report: its sections, relative links, and every image loading in headless Chromium."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from _analysis_runs import TinyExperiment, build_tiny_experiment  # noqa: E402
from fer_kaggle.analysis import analyze  # noqa: E402
from fer_kaggle.report import build_report  # noqa: E402

#: Flags for a headless Chromium that runs as root and contacts no server.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Appended to a copy of the page: lists each image's src and natural width once all have loaded.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(img => [img.getAttribute("src"), img.naturalWidth]);
  const record = document.createElement("pre");
  record.id = "image-check";
  record.textContent = JSON.stringify(images);
  document.body.appendChild(record);
});
</script>"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyExperiment:
    """Tiny runs with both models analysed into ``ROOT/reports``."""
    tiny = build_tiny_experiment(tmp_path_factory.mktemp("report"))
    fast = {"reports_dir": tiny.root / "reports", "smoothgrad_samples": 2, "filter_steps": 4}
    analyze(tiny.experiment, model="cnn", **fast)
    with pytest.warns(UserWarning, match="left out"):
        analyze(tiny.experiment, model="mlp", **fast)
    return tiny


def page_links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#][^"]*)"', page)


def write_compare(reports_dir: Path) -> None:
    """Write stand-ins for the files of ``fer-kaggle compare``."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "compare.md").write_text("| model | accuracy |\n|---|---|\n| cnn | 0.2 |\n")
    figure, axis = plt.subplots(figsize=(2, 2))
    axis.bar(["cnn"], [0.2])
    figure.savefig(reports_dir / "compare.png")
    plt.close(figure)


def test_report_sections(tiny: TinyExperiment) -> None:
    page = build_report(tiny.experiment, tiny.root / "reports").read_text()

    assert "<h2>Data audit</h2>" in page
    assert "<td>fold 2</td>" in page
    assert "run 'make compare'" in page
    assert "Most confused classes: cnn" in page
    assert 'src="analysis/cnn/saliency.png"' in page
    assert 'src="analysis/mlp/saliency.png"' in page
    assert 'src="analysis/mlp/filters.png"' not in page
    assert "filters left out: mlp has no Conv2d layer" in page
    assert 'src="curves/cnn/fold1.png"' in page


def test_report_links_are_relative(tiny: TinyExperiment) -> None:
    reports_dir = tiny.root / "reports"
    page = build_report(tiny.experiment, reports_dir).read_text()
    links = page_links(page)

    assert len(links) > 10
    for link in links:
        assert not link.startswith(("/", "file:", "http:", "https:")), link
        target = (reports_dir / link).resolve()
        assert target.is_file(), link
        assert target.is_relative_to(reports_dir.resolve()), link


def test_report_shows_compare(tiny: TinyExperiment, tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    shutil.copytree(tiny.root / "reports" / "analysis", reports_dir / "analysis")
    write_compare(reports_dir)

    page = build_report(tiny.experiment, reports_dir).read_text()

    assert "<td>cnn</td>\n<td>0.2</td>" in page
    assert 'src="compare.png"' in page
    assert "run 'make compare'" not in page


def test_report_before_training(tiny: TinyExperiment, tmp_path: Path) -> None:
    experiment = yaml.safe_load(tiny.experiment.read_text())
    experiment["runs_dir"] = str(tmp_path / "no_runs")
    experiment["models"] = [str(tiny.experiment.parent / model) for model in experiment["models"]]
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment))

    page = build_report(path, tmp_path / "reports").read_text()

    assert "run 'make train-all' first" in page
    assert "run 'make analyze'" in page


def test_cli_report(tiny: TinyExperiment, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "fer_kaggle", "report", "--experiment", str(tiny.experiment), "--reports", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"saved {tmp_path / 'index.html'}"


def test_report_images_load_in_chromium(tiny: TinyExperiment, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not found; install Debian's chromium package (.ci/run does) to check the page in a browser")
    reports_dir = tiny.root / "reports"
    write_compare(reports_dir)
    page = build_report(tiny.experiment, reports_dir)
    probe = reports_dir / "_image_probe.html"  # beside the page, so its relative links resolve the same way
    probe.write_text(page.read_text().replace("</body>", f"{IMAGE_PROBE}</body>"))
    profile = [f"--user-data-dir={tmp_path / 'profile'}"]

    dumped = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    screenshot = tmp_path / "report.png"
    shot = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--window-size=1280,2400", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )

    record = re.search(r'<pre id="image-check">(.*?)</pre>', dumped.stdout, re.DOTALL)
    assert record is not None, dumped.stderr[-2000:]
    images = json.loads(record.group(1))
    expected = re.findall(r'<img src="([^"]+)"', page.read_text())
    assert [src for src, _ in images] == expected
    assert "compare.png" in expected
    assert [src for src, width in images if width == 0] == []
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 10_000
