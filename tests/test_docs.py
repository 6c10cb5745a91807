"""The documentation stays true: the flags' reference is what the parsers say, and every relative link leads somewhere."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "BENCHMARKS.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks (a ``#`` there is a shell comment, a ``[x](y)`` is code)."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for the page's headings: lower case, punctuation dropped, spaces to hyphens, -N for repeats."""
    seen: dict[str, int] = {}
    for line in prose(page):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def test_every_relative_link_points_to_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in PAGES:
        for line in prose(page):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:: not ours to check offline
                    continue
                path, _, anchor = target.partition("#")
                linked = (page.parent / path).resolve() if path else page
                if not linked.exists():
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading in {linked.name})")
    assert not broken, broken


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    """The check above can fail: a missing file and a missing heading are both caught, a repeated heading's -1 is found."""
    page = tmp_path / "page.md"
    page.write_text("# Top\n## Same\n## Same\n```\n# not a heading\n```\n[a](gone.md) [b](#nowhere) [c](#same-1)\n")
    assert anchors(page) == {"top", "same", "same-1"}
    targets = LINK.findall(" ".join(prose(page)))
    assert targets == ["gone.md", "#nowhere", "#same-1"]
    assert not (tmp_path / "gone.md").exists() and "nowhere" not in anchors(page)


def test_the_flags_reference_is_what_the_parsers_say(tmp_path: Path) -> None:
    """docs/FLAGS.md is generated; a flag changed without running scripts/make_flag_docs.py fails here, with the fix."""
    out = tmp_path / "FLAGS.md"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_flag_docs.py"), "--output", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == (ROOT / "docs" / "FLAGS.md").read_text(), "docs/FLAGS.md is stale: run python scripts/make_flag_docs.py"
    for flag in ("--noise_factor", "--vgg_weights", "--max_upload_mb", "--install_static", "--format", "--preset", "--samples"):
        assert f"\n  {flag}" in out.read_text(), flag
