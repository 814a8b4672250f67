"""Review page: one self-contained HTML file showing a run's pairs, captions, entities and rejections."""

from .html import build_report

__all__ = ["build_report"]
