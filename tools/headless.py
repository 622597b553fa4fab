"""Headless Chromium for the page's tests and screenshots (Debian's ``chromium`` + ``chromium-driver``).

:func:`chrome` starts one through selenium with a fresh profile and nothing that phones home;
:func:`missing` says, in one line, what is not installed (tests skip with it; ``.ci/run``
installs both packages when it runs as root).
"""

from __future__ import annotations

import shutil
import tempfile

#: Chromium switches: headless, no sandbox (root in CI), no GPU, and no background traffic.
CHROME_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")


def binaries() -> tuple[str | None, str | None]:
    """Paths of the browser and its driver (None when absent)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    return browser, shutil.which("chromedriver")


def missing() -> str | None:
    """None when a headless browser can run; else why not (one line)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'edge-ecg[test]')"
    browser, driver = binaries()
    if browser is None or driver is None:
        return "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    return None


def chrome(width: int = 1200, height: int = 900):
    """A selenium Chrome driver on a headless Chromium with a ``width`` x ``height`` window."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="edge-ecg-chrome-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv._edge_ecg_profile = profile
    return drv


def quit_chrome(drv) -> None:
    """Close the browser and remove its profile."""
    try:
        drv.quit()
    finally:
        shutil.rmtree(getattr(drv, "_edge_ecg_profile", ""), ignore_errors=True)


#: JavaScript: pixels of the strip's canvas in each colour given (hex -> count), within +-24 per channel.
COUNT_COLOURS_JS = """
const [colors] = arguments;
const c = document.getElementById('strip');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
const want = colors.map(h => [parseInt(h.slice(1,3),16), parseInt(h.slice(3,5),16), parseInt(h.slice(5,7),16)]);
const out = colors.map(() => 0);
for (let i = 0; i < d.length; i += 4) {
  if (d[i+3] < 200) continue;
  for (let k = 0; k < want.length; k++) {
    const w = want[k];
    if (Math.abs(d[i]-w[0]) < 24 && Math.abs(d[i+1]-w[1]) < 24 && Math.abs(d[i+2]-w[2]) < 24) out[k]++;
  }
}
return out;
"""
