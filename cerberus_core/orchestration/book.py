"""The notebooks as a static book: every notebook executed in its default preset (the committed
programme: nothing trains) and rendered to HTML with nbconvert, with an index page, so a reader can
browse every figure and table without a kernel.

    python -m cerberus_core.orchestration.book [--out book] [notebooks/02_as2_data.ipynb ...]

`make book` runs it. The output folder is git-ignored; the notebooks themselves are never written
(each is executed in memory).
"""
from __future__ import annotations

import argparse
import html
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..provenance import REPO

NOTEBOOKS = REPO / "notebooks"
TIMEOUT = 600  # seconds per cell


def render(notebook: str | Path, out_dir: str | Path, kernel: str = "python3") -> tuple[Path, float]:
    """Execute one notebook in memory (cwd: notebooks/, as in JupyterLab) and write it as HTML into
    `out_dir`. Returns (the HTML file, seconds the execution took). A failing cell raises."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    notebook, out_dir = Path(notebook), Path(out_dir)
    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, kernel_name=kernel, timeout=TIMEOUT,
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter().from_notebook_node(nb)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / f"{notebook.stem}.html"
    page.write_text(body, encoding="utf-8")
    return page, seconds


def _title(notebook: Path) -> str:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), notebook.stem)
    return first.splitlines()[0].lstrip("# ").strip() if first else notebook.stem


def build(out_dir: str | Path = REPO / "book", notebooks: Sequence[str | Path] | None = None) -> Path:
    """Render every notebook (all of notebooks/ by default) into `out_dir` and write index.html
    linking them with the seconds each took to run. Returns the index page."""
    out_dir = Path(out_dir)
    paths = [Path(p) for p in notebooks] if notebooks else sorted(NOTEBOOKS.glob("*.ipynb"))
    items = []
    for path in paths:
        page, seconds = render(path, out_dir)
        print(f"{path.name}: {seconds:.0f} s -> {page}", flush=True)
        items.append(f'<li><a href="{html.escape(page.name)}">{html.escape(_title(path))}</a> '
                     f"<small>(ran in {seconds:.0f} s)</small></li>")
    index = out_dir / "index.html"
    index.write_text("<!doctype html><meta charset='utf-8'><title>CERBERUS notebooks</title>"
                     "<h1>CERBERUS notebooks</h1><p>Each notebook executed in its default preset and "
                     f"rendered to HTML.</p><ul>{''.join(items)}</ul>\n", encoding="utf-8")
    return index


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "book"), help="output folder (default: book/)")
    parser.add_argument("notebooks", nargs="*", help="notebooks to render (default: all of notebooks/)")
    args = parser.parse_args(argv)
    print(build(args.out, args.notebooks or None))


if __name__ == "__main__":
    main(sys.argv[1:])
