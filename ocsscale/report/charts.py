"""The report's charts: the distribution test as bars, the client load's
failures per second laid over the phases on a timeline."""

from __future__ import annotations

import time
from typing import Any

from . import svg

WIDTH = 1040.0


def distribution(dist: dict[str, Any]) -> str:
    """One bar per FE: connections held, the weighted ideal as a mark, and the
    band of one connection either side that the test accepts."""
    rows = dist["rows"]
    label_w, right = 200.0, 150.0
    bar_h, pitch, top = 22.0, 38.0, 34.0
    plot_w = WIDTH - label_w - right
    peak = max([1.0] + [r["count"] for r in rows] + [(r["ideal"] or 0) + 1 for r in rows])
    scale = plot_w / peak
    height = top + pitch * len(rows) + 34
    body = [
        svg.text(
            label_w,
            18,
            f"{dist.get('connections')} connections held to {dist.get('vip')}:{dist.get('port')}",
            12,
            fill=svg.MUTED,
        )
    ]
    for i, r in enumerate(rows):
        y = top + i * pitch
        weight = "" if r["weight"] is None else f" (weight {r['weight']:g})"
        body.append(
            svg.text(
                label_w - 10, y + 16, svg.fit(f"{r['fe']}{weight}", 28), 12.5, text_anchor="end"
            )
        )
        good = r["within_one"] is not False
        colour = svg.GREEN if good else svg.RED
        if r["ideal"] is not None:
            lo = max(0.0, r["ideal"] - 1) * scale
            hi = (r["ideal"] + 1) * scale
            body.append(svg.rect(label_w + lo, y - 4, hi - lo, bar_h + 8, fill=svg.GRID))
        tip = svg.title(f"{r['fe']}: {r['count']} connection(s)")
        body.append(
            f"<g>{tip}"
            + svg.rect(label_w, y, max(r["count"] * scale, 2.0), bar_h, fill=colour, rx=3)
            + "</g>"
        )
        if r["ideal"] is not None:
            x = label_w + r["ideal"] * scale
            body.append(
                svg.line(
                    x,
                    y - 6,
                    x,
                    y + bar_h + 6,
                    stroke=svg.INK,
                    stroke_width=2,
                    stroke_dasharray="4 3",
                )
            )
        ideal = "" if r["ideal"] is None else f" / ideal {r['ideal']:.1f}"
        body.append(svg.text(WIDTH - right + 10, y + 16, f"{r['count']}{ideal}", 12.5))
    y = top + pitch * len(rows) + 6
    body.append(svg.line(label_w, y, label_w + plot_w, y, stroke=svg.LINE))
    body.append(
        svg.text(
            label_w,
            y + 18,
            "bar: connections landed; dashed mark: weighted "
            "ideal; grey band: within one connection",
            11,
            fill=svg.MUTED,
        )
    )
    return svg.document(WIDTH, height, body, f"distribution over {dist.get('vip')}")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


def timeline(load: dict[str, Any]) -> str | None:
    """Failed requests per second (red bars) over the phases' spans (bands);
    None when no evidence held a per-second load record."""
    points = [p for s in load["series"] for p in s["points"]]
    if not points:
        return None
    phases = load["phases"]
    t0 = min([p["t"] for p in points] + [s["start"] for s in phases])
    t1 = max([p["t"] + 1 for p in points] + [s["end"] for s in phases])
    t1 = max(t1, t0 + 10)
    left, right, top, plot_h = 50.0, 20.0, 44.0, 150.0
    plot_w = WIDTH - left - right

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    failed_by_t: dict[float, int] = {}
    ok_by_t: dict[float, int] = {}
    for p in points:
        failed_by_t[p["t"]] = failed_by_t.get(p["t"], 0) + p["failed"]
        ok_by_t[p["t"]] = ok_by_t.get(p["t"], 0) + p["ok"]
    peak = max([1] + list(failed_by_t.values()))
    body: list[str] = []
    shades = (svg.BLUE_FILL, svg.BAND_FILL)
    for i, span in enumerate(phases):
        x0, x1 = x(span["start"]), x(max(span["end"], span["start"]))
        w = max(x1 - x0, 1.0)
        tip = svg.title(f"{span['phase']} ({span['status']})")
        body.append(
            f"<g>{tip}" + svg.rect(x0, top, w, plot_h, fill=shades[i % 2], stroke=svg.GRID) + "</g>"
        )
        if w > 7 * len(span["phase"]) + 6:  # only where the name fits
            body.append(svg.text(x0 + 4, top - 6 - 13 * (i % 2), span["phase"], 11, fill=svg.MUTED))
        elif w > 14:
            body.append(
                svg.text(x0 + 3, top + 14, svg.fit(span["phase"], int(w / 7)), 10, fill=svg.MUTED)
            )
    base = top + plot_h
    for t, n in sorted(failed_by_t.items()):
        if not n:
            continue
        h = max(n / peak * (plot_h - 10), 2.0)
        w = max(x(t + 1) - x(t), 2.0)
        tip = svg.title(f"{_clock(t)} UTC: {n} failed, {ok_by_t.get(t, 0)} ok")
        body.append(f"<g>{tip}" + svg.rect(x(t), base - h, w, h, fill=svg.RED) + "</g>")
    body.append(svg.line(left, base, left + plot_w, base, stroke=svg.INK))
    body.append(svg.line(left, top, left, base, stroke=svg.INK))
    body.append(svg.text(left - 6, top + 10, str(peak), 11, text_anchor="end"))
    body.append(svg.text(left - 6, base, "0", 11, text_anchor="end"))
    for k in range(6):
        t = t0 + (t1 - t0) * k / 5
        body.append(svg.line(x(t), base, x(t), base + 5, stroke=svg.INK))
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        body.append(svg.text(x(t), base + 18, _clock(t), 11, text_anchor=anchor))
    total = sum(failed_by_t.values())
    note = (
        f"{total} failed request(s) in {sum(1 for n in failed_by_t.values() if n)} second(s)"
        if total
        else "no failed request in the recorded load"
    )
    body.append(
        svg.text(left, base + 38, f"{note}; time in UTC; bands: phases", 11.5, fill=svg.MUTED)
    )
    return svg.document(WIDTH, base + 48, body, "client load failures per second")
