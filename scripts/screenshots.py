"""Screenshots of the real demo pages for the README, made by headless Chromium.

Runs ``gpviz demo`` (or takes a folder it already wrote), opens each page in
Debian's Chromium through Playwright (``executable_path``, never a downloaded
browser), waits for the figures to draw, and writes PNGs into ``docs/images/``,
shrinking any that would exceed the size budget.

Usage:
    .venv/bin/python scripts/screenshots.py [--demo-dir gpviz-demo] [--out docs/images] [--quick]
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_BYTES = 300_000
#: page -> (PNG name, viewport width, height to keep from the top (None: the full page))
SHOTS = {
    "index.html": ("demo-index.png", 1100, 900),
    "model.html": ("model.png", 1100, None),
    "fit.html": ("fit.png", 1100, None),
    "sweep.html": ("sweep.png", 1400, None),
    "priors.html": ("priors.png", 1400, 1500),
    "fit_modes.html": ("fit-modes.png", 1100, 720),
}
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync"]


def run_demo(out: Path, quick: bool) -> None:
    exe = Path(sys.executable).with_name("gpviz")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gpviz"]
    cmd += ["demo", "--out", str(out), "--no-progress"] + (["--quick"] if quick else [])
    print("running:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def shrink(png: bytes, limit: int = MAX_BYTES) -> bytes:
    """Re-encodes a PNG with fewer colours, then smaller, until it fits ``limit`` bytes."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 1.0
    while True:
        cur = img if scale == 1.0 else img.resize((int(img.width * scale), int(img.height * scale)),
                                                   Image.LANCZOS)
        buf = io.BytesIO()
        cur.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        if buf.tell() <= limit or scale < 0.4:
            return buf.getvalue()
        scale *= 0.85


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-dir", type=Path, help="a folder written by `gpviz demo` (default: run the demo)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    ap.add_argument("--quick", action="store_true", help="run the quick demo")
    args = ap.parse_args()

    demo = args.demo_dir
    if demo is None:
        demo = Path(tempfile.mkdtemp(prefix="gpviz-demo-"))
        run_demo(demo, args.quick)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        for page_name, (png_name, width, height) in SHOTS.items():
            path = demo / page_name
            if not path.exists():
                print(f"skipped {page_name}: not in {demo}")
                continue
            page = browser.new_page(viewport={"width": width, "height": height or 900})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.resolve().as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(600)  # let the figures draw
            png = page.screenshot(full_page=height is None)
            page.close()
            if len(png) > MAX_BYTES:
                png = shrink(png)
            target = args.out / png_name
            target.write_bytes(png)
            print(f"{target} ({len(png) // 1024} KB){'; console errors: ' + str(errors) if errors else ''}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
