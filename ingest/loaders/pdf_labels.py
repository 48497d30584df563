"""Printed page labels of a PDF ("iv", "A-3", "12"), where its author set them, so a citation
can give the page as printed beside the page as a viewer counts it."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.discovery import bytes_if_unchanged


def pdf_page_labels(path: Path, content_hash: str) -> list[str] | None:
    """For each page, its printed label ("" when it has none); an empty list when the PDF
    sets no labels. None when the file is gone, unreadable, or no longer the one indexed (its
    SHA-256 differs from `content_hash`)."""
    import pypdfium2 as pdfium

    data = bytes_if_unchanged(path, content_hash)
    if data is None:
        return None
    try:
        document = pdfium.PdfDocument(data)
    except Exception:
        return None
    try:
        labels = [document.get_page_label(i) for i in range(len(document))]
    except Exception:
        return None
    finally:
        document.close()
    return labels if any(labels) else []
