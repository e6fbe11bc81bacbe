"""The energy report as a real browser lays it out (headless Chromium), at 1400 and 800 px:
no element overflows the page, and every figure has axes and text."""
import json
import re
import shutil
import subprocess

import pytest

from spikedeploy.energy import energy_report
from spikedeploy.hw_sim.reference import simulate
from spikedeploy.ir.lowering import lower

from helpers import mlp_graph, spikes

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)

# Run by the browser after layout: what sticks out past the window (inside a scrolling box is
# fine), and which figures lack matplotlib's two axis groups or any text.
CHECK = """<script>
const w = window.innerWidth, bad = [];
for (const el of document.body.querySelectorAll('*')) {
  const box = el.closest('.scroll');
  if (box && box !== el) continue;
  if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
  if (el.getBoundingClientRect().right > w + 1) bad.push(el.tagName + '.' + el.className);
}
const svgs = [...document.querySelectorAll('svg')];
const bare = svgs.filter(s => s.querySelectorAll('[id^="matplotlib.axis"]').length < 2
                              || !s.querySelector('text')).length;
document.body.setAttribute('data-check', JSON.stringify(
  {bad: bad, page: document.documentElement.scrollWidth, w: w, svgs: svgs.length, bare: bare}));
</script></body>"""


@pytest.mark.skipif(BROWSER is None, reason="no Chromium here (make test installs Debian's "
                                            "chromium where apt-get may)")
@pytest.mark.parametrize("width", [1400, 800])
def test_report_lays_out_within_the_window(rng, tmp_path, width):
    program = lower(mlp_graph(rng, sizes=(40, 300, 10)))
    result = simulate(program, spikes(rng, (20, 4, 40), 0.4))
    rep = energy_report(result, profile="loihi", memory=True)
    rep.provenance = {"input file": "/a/very/long/path/" + "x" * 300 + ".nir",
                      "input SHA-256": "f" * 64}
    rep.accuracy = {"float": 0.5}
    rep.companions = {"fixed": energy_report(result)}
    page = tmp_path / "report.html"
    page.write_text(rep.to_html().replace("</body>", CHECK))
    dom = subprocess.run([BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu",
                          f"--window-size={width},1200", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-check="([^"]*)"', dom)
    assert found, dom[:500]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["w"] == width and check["page"] <= width, check
    assert check["bad"] == [], check["bad"]
    assert check["svgs"] >= 6 and check["bare"] == 0, check
