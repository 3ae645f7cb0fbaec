"""Rendering the report page: a jinja2 template, its stylesheet inlined, figures as data URIs."""

import base64
import io
import platform
from importlib import metadata
from pathlib import Path

_TEMPLATES = Path(__file__).parent / "templates"

#: The packages whose versions a report lists (those that are installed).
_PACKAGES = ("skgap", "numpy", "scipy", "scikit-learn", "matplotlib", "pandas", "jinja2",
             "torch", "open_clip_torch", "transformers")


def _environment():
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError(
            "the HTML report needs jinja2: pip install skgap[report] (or pip install jinja2)."
        ) from exc
    # autoescape: every value (file names, warnings, labels) is text, never markup.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def figure_png(fig, dpi=100):
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (the figure is closed).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, default=100

    Returns
    -------
    uri : str
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def package_versions():
    """Versions of Python and of the installed packages a result depends on.

    Returns
    -------
    versions : list of (str, str)
        ``(name, version)`` pairs; packages that are not installed are left out.
    """
    out = [("python", platform.python_version())]
    for name in _PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return out


def render_report(*, title, command, data, cone=None, overview=(), tasks=(), warnings=(),
                  settings=(), versions=None, generated=None):
    """The report page as one HTML string.

    Parameters
    ----------
    title : str
        The page's heading.
    command : str
        The command line that reproduces the page.
    data : sequence of (str, str)
        The data summary: file, pairs, widths, dtype, labels, class balance.
    cone : sequence of (str, str, str), default=None
        Cone statistics as (statistic, value, meaning) rows.
    overview : sequence of dict, default=()
        Figures shown before the tasks: ``{"title", "uri", "caption"}``.
    tasks : sequence of dict, default=()
        One per task family: ``{"name", "title", "status", "reason", "figure"
        (a data URI or None), "columns", "rows"}``; ``status`` is the list
        of verdict lines, ``reason`` names a degenerate or trivial task (or None).
    warnings : sequence of str, default=()
    settings : sequence of (str, str), default=()
    versions : sequence of (str, str), default=None
        ``None`` lists :func:`package_versions`.
    generated : str, default=None
        When the report was made (shown at the foot of the page).

    Returns
    -------
    html : str
    """
    env = _environment()
    css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env.get_template("report.html.j2").render(
        title=title, command=command, data=list(data), cone=list(cone or ()),
        overview=list(overview), tasks=list(tasks), warnings=list(warnings),
        settings=list(settings),
        versions=list(package_versions() if versions is None else versions),
        generated=generated, css=css,
    )


def write_report(path, **context):
    """Render the report and write it to ``path``.

    Parameters
    ----------
    path : path-like
        The HTML file to write (UTF-8).
    **context
        The keywords of :func:`render_report`.

    Returns
    -------
    path : pathlib.Path
    """
    path = Path(path)
    path.write_text(render_report(**context), encoding="utf-8")
    return path
