"""The committed figures (figures/ and figures/v2/, written by `make figures`) are paper-ready: each
PDF is one ACL column (3.03 in) or the text width (6.3 in) wide and embeds TrueType fonts, never
Type 3; each has a caption in its sidecar and on its folder's gallery page; no two texts overlap;
and a model or head has one display name and one colour in every figure.

Reads committed files only (no drawing), so it is quick; it fails until `make figures` has been run
after a change to the figures' code or style.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cerberus_core.reporting import names
from cerberus_core.reporting.style import COLUMN_WIDTH, MIN_FONT, TEXT_WIDTH

FIGURES = Path(__file__).resolve().parents[1] / "figures"
FOLDERS = [FIGURES, FIGURES / "v2"]
PDFS = sorted(p for folder in FOLDERS for p in folder.glob("*.pdf"))
TOLERANCE = 0.03  # inches
# run-folder keys and code spellings a reader should never see in a figure
RAW_NAMES = re.compile(r"\b(minilm-l[36]|mpnet-base|replicated-|single-|head\d\b|cerberus\b|B_b|kH_h|mean_pearson|"
                       r"top1_disagreement)")


def sidecar(pdf: Path) -> dict:
    return json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8"))


def test_there_are_figures_in_both_folders():
    assert {p.parent for p in PDFS} == set(FOLDERS)


@pytest.mark.parametrize("pdf", PDFS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pdf_is_a_venue_width_with_truetype_fonts(pdf):
    data = pdf.read_bytes()
    box = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", data)
    width = (float(box[3]) - float(box[1])) / 72
    assert min(abs(width - COLUMN_WIDTH), abs(width - TEXT_WIDTH)) <= TOLERANCE, f"{pdf.name}: {width:.3f} in"
    assert b"/Type3" not in data and b"/FontType 3" not in data, f"{pdf.name} embeds a Type 3 font"
    assert b"/FontFile2" in data, f"{pdf.name} embeds no TrueType font"
    assert pdf.with_suffix(".png").is_file()


@pytest.mark.parametrize("pdf", PDFS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_figure_has_a_caption_no_overlapping_text_and_no_raw_names(pdf):
    found = sidecar(pdf)
    caption = found.get("caption", "")
    assert len(caption) > 60, f"{pdf.name} has no caption"
    gallery = (pdf.parent / "README.md").read_text(encoding="utf-8")
    assert f"![{pdf.stem}]({pdf.stem}.png)" in gallery and caption in gallery
    assert found["overlapping_texts"] == [], f"{pdf.name}: {found['overlapping_texts']}"
    assert found["smallest_font_pt"] >= MIN_FONT, f"{pdf.name}: text at {found['smallest_font_pt']} pt"
    shown = [t for t in found["texts"] if RAW_NAMES.search(t)]
    assert not shown, f"{pdf.name} shows run-folder names: {shown}"


def test_a_model_or_head_has_one_colour_in_every_figure():
    seen: dict[str, dict[str, str]] = {}
    for pdf in PDFS:
        for name, colors in sidecar(pdf)["colors"].items():
            assert len(colors) == 1, f"{pdf.name}: {name} drawn in {colors}"
            seen.setdefault(name, {})[f"{pdf.parent.name}/{pdf.stem}"] = colors[0]
    for name, where in seen.items():
        assert len(set(where.values())) == 1, f"{name} changes colour: {where}"
    assert seen["CERBERUS"] and set(seen["CERBERUS"].values()) == {names.CERBERUS_COLOR.lower()}


def test_colours_and_names_come_from_the_names_module():
    """The colour each figure drew for a name is the one `names` gives that model or head."""
    expected = {names.model_name(k): names.model_color(k) for k in (
        "cerberus", "gold", "ensemble", "teacher ensemble", "single-minilm-l3", "single-minilm-l6",
        "single-mpnet-base", "replicated-mpnet-base", "minilm-l3", "minilm-l6", "mpnet-base")}
    expected |= {names.head_name(i, t): names.head_color(i)
                 for i, t in enumerate(("minilm-l3", "minilm-l6", "mpnet-base"))}
    checked = 0
    for pdf in PDFS:
        for name, colors in sidecar(pdf)["colors"].items():
            if name in expected:
                assert colors == [expected[name].lower()], f"{pdf.name}: {name}"
                checked += 1
    assert checked > 20


def test_the_gallery_lists_the_latex_tables_and_they_use_booktabs():
    tables = sorted(FIGURES.glob("v2/*_table.tex"))
    assert [t.name for t in tables] == ["claims_table.tex", "results_table.tex"]
    for table in tables:
        text = table.read_text(encoding="utf-8")
        assert r"\toprule" in text and r"\bottomrule" in text and r"\caption{" in text
        assert f"({table.name})" in (table.parent / "README.md").read_text(encoding="utf-8")
