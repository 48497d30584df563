"""Text of PDF pages that have no text layer (scans), read with OCR.

The engine is RapidOCR on ONNX Runtime (`rapidocr-onnxruntime`): it installs from PyPI and
its wheel ships the detection and recognition models, so nothing is downloaded when it
runs. It is a dependency, but ingest works without it: such pages are then reported as
skipped, with `OCR_ADVICE`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

OCR_PACKAGE = "rapidocr-onnxruntime"
# Said of the pages skipped (after "pages 3, 4 not read"), and of a PDF with nothing else.
OCR_ADVICE = f"scanned, no text layer: install OCR with `pip install {OCR_PACKAGE}` and ingest again"
# Render scale: 2 is 144 dpi, enough for body text (the detector works at 736 px or more on
# the short side) without the time of a print-quality render.
RENDER_SCALE = 2.0
# Recognised lines scored under this are noise (specks, stamps) more often than words.
MIN_SCORE = 0.5

_lock = threading.Lock()
_engine: Any = None
_missing = False


def ocr_available() -> bool:
    """Whether the OCR engine can be loaded (loads it on first call)."""
    return _load() is not None


def _load() -> Any:
    global _engine, _missing
    with _lock:
        if _engine is None and not _missing:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError:
                _missing = True
                log.info("OCR engine not installed (%s): scanned pages will be skipped", OCR_PACKAGE)
            else:
                _engine = RapidOCR()
        return _engine


def needs_ocr(page: Any) -> bool:
    """Whether a page without text shows an image (a scan), as opposed to being blank."""
    import pypdfium2.raw as pdfium_c

    return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))


def ocr_page(page: Any) -> str | None:
    """The page's text read by OCR, lines top to bottom and left to right; None when no OCR
    engine is installed."""
    engine = _load()
    if engine is None:
        return None
    import numpy as np

    image = page.render(scale=RENDER_SCALE).to_pil().convert("RGB")
    with _lock:  # one page at a time: the engine keeps state between its stages
        found, _ = engine(np.asarray(image))
    return order_lines(
        [(box, text) for box, text, score in found or () if text.strip() and float(score) >= MIN_SCORE]
    )


def order_lines(found: list[tuple[Any, str]]) -> str:
    """OCR'd pieces (a box of four corner points, its text) as lines in reading order: pieces
    whose middles are within one another's height share a line, read left to right."""
    boxes = []
    for corners, text in found:
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        boxes.append((min(ys), max(ys), min(xs), text))
    lines: list[list[tuple[float, float, float, str]]] = []
    for box in sorted(boxes):
        middle = (box[0] + box[1]) / 2
        if lines and lines[-1][0][0] <= middle <= lines[-1][0][1]:
            lines[-1].append(box)
        else:
            lines.append([box])
    return "\n".join(" ".join(b[3] for b in sorted(line, key=lambda b: b[2])) for line in lines)
