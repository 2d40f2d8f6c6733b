#!/usr/bin/env python3
"""Draws the results of bench_upstream.py as an SVG bar chart of B/A per metric.

usage: chart.py RESULTS.TSV [RESULTS.TSV ...] OUT.SVG

One horizontal bar per metric (one group per results file, e.g. one per upstream version),
its length the ratio ours/upstream on a logarithmic axis, with a line at 1.0. A bar is green
where ours does better (ratio above 1 for "higher is better" metrics, below 1 for "lower is
better" ones) and red where it does worse. Standard library only.
"""

import math
import sys
from xml.sax.saxutils import escape

COLORS_GOOD = ["#2e8b57", "#6cbf8f"]
COLORS_BAD = ["#c0392b", "#e57f73"]


def read(path):
    meta, rows = {}, []
    with open(path) as f:
        header = None
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("#"):
                k, _, v = line[1:].strip().partition("\t")
                meta[k] = v
                continue
            cols = line.split("\t")
            if header is None:
                header = cols
                continue
            rows.append(dict(zip(header, cols)))
    return meta, rows


def main():
    if len(sys.argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    # oldest run first, so that the bars keep their order when a newer tree is added
    inputs = sorted((read(p) for p in sys.argv[1:-1]), key=lambda mr: mr[0].get("date", ""))
    out = sys.argv[-1]

    metrics = []
    for _, rows in inputs:
        for r in rows:
            if r["metric"] not in [m for m, _ in metrics]:
                metrics.append((r["metric"], "%s, %s better" % (r["unit"], r["better"])))
    values = {}
    for i, (_, rows) in enumerate(inputs):
        for r in rows:
            ratio = float(r["ratio"])
            if math.isfinite(ratio) and ratio >= 0:
                values[(r["metric"], i)] = (ratio, r["better"])

    ratios = [v for v, _ in values.values() if v > 0] or [1.0]
    lo = min(0.5, min(ratios) / 1.25)
    hi = max(2.0, max(ratios) * 1.25)
    # round the axis ends to powers of two
    lo = 2.0 ** math.floor(math.log2(lo))
    hi = 2.0 ** math.ceil(math.log2(hi))

    n = len(inputs)
    bar_h, gap = 16, 12
    row_h = n * bar_h + gap
    left, right, top = 250, 60, 70
    plot_w = 520
    legend_h = 22 * n
    height = top + len(metrics) * row_h + 40 + legend_h
    width = left + plot_w + right

    def x(v):
        return left + plot_w * (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))

    s = []
    s.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">'
             % (width, height, width, height))
    s.append('<rect width="100%" height="100%" fill="white"/>')
    s.append('<text x="%d" y="24" font-size="15" font-weight="bold">skynet-rs (B) against '
             'upstream skynet (A): B/A per metric</text>' % 10)
    dates = ", ".join(sorted({m.get("date", "?") for m, _ in inputs}))
    s.append('<text x="10" y="44" fill="#555">medians of %s runs each; %s; log scale; green: '
             'ours better, red: ours worse</text>'
             % (escape(inputs[0][0].get("rounds", "?")), escape(dates)))

    axis_y0, axis_y1 = top - 6, top + len(metrics) * row_h
    k = lo
    while k <= hi * 1.0001:
        xx = x(k)
        s.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                 % (xx, axis_y0, xx, axis_y1))
        s.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g</text>'
                 % (xx, axis_y1 + 16, k))
        k *= 2
    for j, (metric, sub) in enumerate(metrics):
        y = top + j * row_h
        s.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                 % (left - 8, y + n * bar_h / 2, escape(metric)))
        s.append('<text x="%d" y="%d" text-anchor="end" fill="#777" font-size="10">%s</text>'
                 % (left - 8, y + n * bar_h / 2 + 12, escape(sub)))
        for i in range(n):
            v = values.get((metric, i))
            yy = y + i * bar_h
            if v is None:
                s.append('<text x="%.1f" y="%d" fill="#777">n/a</text>' % (x(1.0) + 4, yy + 12))
                continue
            ratio, better = v
            good = ratio >= 1.0 if better == "higher" else ratio <= 1.0
            color = (COLORS_GOOD if good else COLORS_BAD)[i % 2]
            # a ratio of 0 (ours measured 0) is drawn to the axis' end
            x0, x1 = sorted((x(1.0), x(max(ratio, lo))))
            s.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                     % (x0, yy + 1, max(x1 - x0, 1), bar_h - 2, color))
            tx = x1 + 4 if ratio >= 1.0 else x0 - 4
            anchor = "start" if ratio >= 1.0 else "end"
            s.append('<text x="%.1f" y="%d" text-anchor="%s" font-size="11">%.2f</text>'
                     % (tx, yy + 12, anchor, ratio))
    s.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="1.5"/>'
             % (x(1.0), axis_y0, x(1.0), axis_y1))
    ly = axis_y1 + 36
    for i, (meta, _) in enumerate(inputs):
        s.append('<rect x="10" y="%d" width="12" height="12" fill="%s"/>'
                 % (ly + i * 22 - 10, COLORS_GOOD[i % 2]))
        s.append('<rect x="24" y="%d" width="12" height="12" fill="%s"/>'
                 % (ly + i * 22 - 10, COLORS_BAD[i % 2]))
        s.append('<text x="42" y="%d">bar %d: upstream %s (%s), thread = %s, %s CPUs</text>'
                 % (ly + i * 22, i + 1, escape(meta.get("upstream", "?")),
                    escape(meta.get("date", "?")), escape(meta.get("thread", "?")),
                    escape(meta.get("cpus", "?"))))
    s.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(s) + "\n")


if __name__ == "__main__":
    main()
