"""Render the sample weekly digest and screenshot it in headless Chromium.

    .venv/bin/python bench/digest_screenshot.py [OUT_DIR]

Writes ``digest.html``, ``digest.txt`` and ``digest.png`` (a real HTML renderer's
view of the mail: the figures, the at-risk table and the shaded heat map with
the staffing figures) and fails when Chromium is missing or draws nothing.
Install Debian's ``chromium`` package for it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from inboxd.flows.render import SAMPLE_CONTEXT, TemplateRenderer

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "var/bench-digest").resolve()
    out.mkdir(parents=True, exist_ok=True)
    rendered = TemplateRenderer(ROOT / "templates").render("digest", **SAMPLE_CONTEXT)
    assert rendered.text.strip() and rendered.html.strip(), "text and HTML parts expected"
    assert "<img" not in rendered.html and "http" not in rendered.html.lower()
    page = out / "digest.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><title>{rendered.subject}</title>"
                    + rendered.html)
    (out / "digest.txt").write_text(f"Subject: {rendered.subject}\n\n{rendered.text}")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    shot = out / "digest.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,900",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    size = shot.stat().st_size if shot.exists() else 0
    print(f"{shot}: {size} bytes; text part {len(rendered.text)} characters")
    return 0 if size > 10_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
