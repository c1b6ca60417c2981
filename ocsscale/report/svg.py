"""Small SVG building blocks, drawn by our own code (no library, no script).

Every text that goes into an SVG passes through `text()`, which escapes it:
names and labels come from the journal's evidence, which is untrusted.
"""

from __future__ import annotations

from html import escape

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"

# colours (one palette for the whole report; the CSS uses the same values)
INK = "#1f2933"
MUTED = "#616e7c"
LINE = "#9aa5b1"
GRID = "#e4e7eb"
BLUE = "#2f6fb0"
BLUE_FILL = "#e3eefa"
GREEN = "#2f8f5b"
GREEN_FILL = "#e3f4ea"
RED = "#c2362f"
AMBER = "#b7791f"
AMBER_FILL = "#fdf3e1"
GREY_FILL = "#f2f4f6"
BAND_FILL = "#e9ecf0"


def _f(n: float) -> str:
    return f"{n:.1f}".rstrip("0").rstrip(".")


def attrs(**kw: object) -> str:
    parts = []
    for key, value in kw.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        shown = _f(value) if isinstance(value, float) else str(value)
        parts.append(f'{name}="{escape(shown, quote=True)}"')
    return " ".join(parts)


def text(x: float, y: float, content: object, size: float = 12, **kw: object) -> str:
    kw.setdefault("fill", INK)
    return (
        f"<text {attrs(x=float(x), y=float(y), font_size=size, **kw)}>{escape(str(content))}</text>"
    )


def rect(x: float, y: float, w: float, h: float, **kw: object) -> str:
    return f"<rect {attrs(x=float(x), y=float(y), width=float(w), height=float(h), **kw)}/>"


def line(x1: float, y1: float, x2: float, y2: float, **kw: object) -> str:
    kw.setdefault("stroke", LINE)
    return f"<line {attrs(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2), **kw)}/>"


def title(content: object) -> str:
    """A tooltip (shown on hover; also what a screen reader says)."""
    return f"<title>{escape(str(content))}</title>"


def document(width: float, height: float, body: list[str], label: str) -> str:
    return (
        # no xmlns: inline SVG in HTML gets its namespace from the parser
        f'<svg role="img" '
        f"{attrs(viewBox=f'0 0 {_f(width)} {_f(height)}')} "
        f'style="width:100%;max-width:{_f(width)}px;height:auto" font-family="{FONT}">'
        f"{title(label)}{''.join(body)}</svg>"
    )


def fit(content: object, chars: int) -> str:
    """Cut a label to about `chars` characters (SVG text does not wrap)."""
    s = str(content)
    return s if len(s) <= chars else s[: max(1, chars - 1)] + "…"
