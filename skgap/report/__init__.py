"""One self-contained HTML page of a sweep or of the cone statistics (needs ``skgap[report]``).

The page is rendered from a jinja2 template and one CSS file that sit beside
this module; figures are embedded as base64 PNG, so the file opens anywhere,
sends no request and can be e-mailed or attached to a supplement as it is.
"""

from ._html import figure_png, package_versions, render_report, write_report

__all__ = ["figure_png", "package_versions", "render_report", "write_report"]
