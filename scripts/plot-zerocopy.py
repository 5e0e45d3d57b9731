#!/usr/bin/env python3
"""plot-zerocopy.py - the SVG plot of a bench-zerocopy.sh result.

    scripts/plot-zerocopy.py results/bench-zerocopy.json   (writes the .svg next to it)

One panel per direction and placement: MB/s (top) and CPU s/GB of the
copying process (bottom) against the chunk size, for the plain loop, the
same loop preloaded, and the hand-written kernel loop. Medians, as in the
.md table of the same run.
"""
import json
import sys

src = sys.argv[1]
j = json.load(open(src))
summary, chunks, rounds, machine = j["cases"], j["chunks"], j["rounds"], j["machine"]
methods = ["plain", "preloaded", "kernel"]
out = src[:-5] if src.endswith(".json") else src

colors = {"plain": "#888888", "preloaded": "#2b7bb9", "kernel": "#e08a1e"}
PW, PH, GAP = 230, 130, 60
cases = list(summary.items())
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{GAP + len(cases) * (PW + GAP)}" '
       f'height="{2 * (PH + GAP) + 60}" font-family="sans-serif" font-size="10">',
       '<rect width="100%" height="100%" fill="white"/>']
for i, (case, g) in enumerate(cases):
    x0 = GAP + i * (PW + GAP)
    cs = [c for c in chunks if c in g]
    svg.append(f'<text x="{x0}" y="16" font-size="12" font-weight="bold">{case}</text>')
    for row, (k, unit) in enumerate(((0, "MB/s"), (1, "CPU s/GB"))):
        y0 = 30 + row * (PH + GAP)
        vals = [g[c][m][k] for c in cs for m in methods if g[c][m][k] == g[c][m][k]]
        top = max(vals) * 1.1 if vals else 1
        svg.append(f'<rect x="{x0}" y="{y0}" width="{PW}" height="{PH}" fill="none" stroke="#ccc"/>')
        svg.append(f'<text x="{x0 - 4}" y="{y0 + 8}" text-anchor="end">{top:.0f}</text>' if k == 0 else
                   f'<text x="{x0 - 4}" y="{y0 + 8}" text-anchor="end">{top:.2f}</text>')
        svg.append(f'<text x="{x0}" y="{y0 + PH + 26}">{unit} by chunk size</text>')
        for j, c in enumerate(cs):
            x = x0 + (j + 0.5) * PW / len(cs)
            svg.append(f'<text x="{x:.0f}" y="{y0 + PH + 12}" text-anchor="middle">{c}</text>')
        for m in methods:
            pts = [(x0 + (j + 0.5) * PW / len(cs), y0 + PH - g[c][m][k] / top * PH)
                   for j, c in enumerate(cs) if g[c][m][k] == g[c][m][k]]
            svg.append(f'<polyline fill="none" stroke="{colors[m]}" stroke-width="2" points="' +
                       " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
lx = GAP
for m in methods:
    svg.append(f'<rect x="{lx}" y="{2 * (PH + GAP) + 30}" width="12" height="4" fill="{colors[m]}"/>'
               f'<text x="{lx + 16}" y="{2 * (PH + GAP) + 35}">{m}</text>')
    lx += 90
svg.append(f'<text x="{lx + 20}" y="{2 * (PH + GAP) + 35}">{machine}; medians of {rounds} rounds</text></svg>')
with open(out + ".svg", "w") as f:
    f.write("\n".join(svg) + "\n")
print(f"wrote {out}.svg")
