"""The HTML report in a real browser: headless Chromium loads every figure, the page
holds every task's verdict, and its screenshot is not blank (skgap/report/)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from skgap.cli import main
from skgap.datasets import make_paired_embeddings

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install chromium; .ci/run installs it)",
)

#: Appended to a copy of the page: once everything has loaded, write what each image
#: decoded to into the DOM, which --dump-dom prints.
_PROBE = """<script>
window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "skgap-probe";
  out.textContent = JSON.stringify(Array.prototype.map.call(document.images, function (img) {
    return [img.complete, img.naturalWidth, img.naturalHeight];
  }));
  document.body.appendChild(out);
});
</script>
"""


def _chromium(*args, timeout=120):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    X, y = make_paired_embeddings(200, 8, n_classes=3, class_sep=1.0, noise=1.5,
                                  random_state=0)
    names = np.random.RandomState(0).normal(size=(3, 8))
    T = names[y]  # class-name captions: retrieval is degenerate, a greyed task on the page
    np.savez(tmp / "e.npz", image=X[:, :8], text=T, labels=y)
    assert main(["sweep", str(tmp / "e.npz"), "--tasks", "image,zeroshot,retrieval",
                 "--lams", "0", "0.5", "1", "--seeds", "3", "--out", str(tmp / "o")]) == 0
    return tmp / "o" / "report.html"


def test_the_page_is_self_contained(page):
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html  # readable without JavaScript
    assert html.count('src="data:image/png;base64,') >= 4  # cones + one per task


def test_every_figure_loads_and_every_verdict_is_on_the_page(page, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium("--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="skgap-probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe script did not run"
    images = json.loads(found.group(1))
    assert len(images) >= 4
    assert all(done and width > 0 and height > 0 for done, width, height in images), images
    text = re.sub(r"<[^>]+>", " ", dom)
    for title in ("image-only probe", "zero-shot", "retrieval"):
        section = text[text.index(f" {title} "):]
        assert re.search(r"(helps|hurts|no evidence|not a finding)", section[:3000])
    retrieval = text[text.index(" retrieval "):]
    assert "Not a finding. degenerate: 3 distinct texts for 200 pairs" in retrieval


def test_the_screenshot_is_not_blank(page, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    image = PIL.open(shot).convert("L")
    pixels = np.asarray(image)
    assert pixels.shape == (2400, 1280)
    dark = (pixels < 200).mean()
    assert 0.02 < dark < 0.6, dark  # text and figures, not an empty or a black page
    # The top band holds the heading: ink in the first 150 rows.
    assert (pixels[:150] < 128).any()
