"""Reports: self-contained HTML (:class:`HtmlReport`), figures and paper tables."""

from osteomri.report.html import HtmlReport

__all__ = ["HtmlReport"]
