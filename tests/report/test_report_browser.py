"""The HTML report opened in a real browser (headless Chromium, no network):
the screenshot is not blank and the page names the pool."""

from __future__ import annotations

from pathlib import Path

from .chromium import needs_chromium
from .chromium import run_chromium as _chromium
from .conftest import POOL_NAME, Migrated, cli
from .png import distinct_colours, read_png

pytestmark = needs_chromium


def test_chromium_renders_the_report_and_it_names_the_pool(
    migrated: Migrated, tmp_path: Path
) -> None:
    cli(migrated.pool, "report", check=True)
    page = (migrated.state_dir / "report.html").resolve().as_uri()

    shot = tmp_path / "report.png"
    done = _chromium(
        tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000", page
    )
    assert shot.exists(), done.stderr[-2000:]
    width, height, _, _ = read_png(shot)
    assert (width, height) == (1280, 2000)
    # a blank or unstyled page has a handful of colours; text, badges and
    # the SVG pictures antialiased give hundreds
    assert distinct_colours(shot) > 200

    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'Migration report: <span class="pool">{POOL_NAME}</span>' in dom.stdout
    assert dom.stdout.count("<svg") == 3
    assert "<script" not in dom.stdout.lower()  # the hostile evidence stayed text
