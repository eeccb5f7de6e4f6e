"""The cohort page ``OUT/report.html``: every slide's thumbnail, heatmap, status and key numbers.

One file with its style and a few lines of script inline (no network, no
libraries), so it opens from a share or a USB stick; the images stay in the slide
folders and are linked relatively (lazy-loaded), so a cohort of thousands of slides
stays a small page. Failed slides come first, in red, with their error in words;
any column sorts by a click on its header.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from ..wording import count
from .table import STATUSES

REPORT_FILE = "report.html"

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px;margin:0 0 4px}.sub{color:#555;margin-bottom:12px}
.badge{display:inline-block;padding:1px 8px;border-radius:4px;font-size:13px}
.counts .badge{margin-right:10px;font-size:14px}
table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:middle}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0;text-align:left;white-space:nowrap}
th:after{content:' \\2195';color:#aaa}td.n{text-align:right;font-variant-numeric:tabular-nums}
th[data-dir=asc]:after{content:' \\25B2'}th[data-dir=desc]:after{content:' \\25BC'}
img{max-height:220px;max-width:300px;display:block;background:#eee}
.ok{background:#dff3df;color:#1d5e20}.skipped{background:#e6ecf8;color:#2b4a80}
.failed{background:#f9d6d3;color:#8a1c13;font-weight:600}.unfinished{background:#fdebc8;color:#7a4b00}
tr.r-failed td{background:#fff5f4}.err{color:#b3261e;font-weight:600;max-width:520px;margin-top:2px}
td.slide{min-width:200px}.note{color:#666;font-size:12px}.art{font-size:12px;color:#444}
.warn{background:#fdebc8;color:#7a4b00;font-weight:600}div.warn{background:none;font-size:13px;margin-top:2px}
"""

_SCRIPT = """
document.querySelectorAll('th').forEach((th,i)=>th.addEventListener('click',()=>{
 const body=th.closest('table').tBodies[0],rows=[...body.rows],up=th.dataset.dir!=='asc';
 const key=r=>{const c=r.cells[i],v=c.dataset.v??c.textContent.trim(),f=parseFloat(v);return isNaN(f)?v.toLowerCase():f};
 rows.sort((a,b)=>{const x=key(a),y=key(b);return (x>y?1:x<y?-1:0)*(up?1:-1)});
 th.parentNode.querySelectorAll('th').forEach(h=>delete h.dataset.dir);th.dataset.dir=up?'asc':'desc';rows.forEach(r=>body.appendChild(r));}));
"""

_STATUS_ORDER = {"failed": 0, "unfinished": 1, "ok": 2, "skipped": 3}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key, "")
    try:
        text = format(float(value), fmt)
    except (TypeError, ValueError):
        return '<td class="n" data-v="">–</td>'
    return f'<td class="n" data-v="{_esc(value)}">{text}</td>'


def _images(row: dict[str, Any], out: Path) -> str:
    cells = []
    for name in ("thumbnail.png", "heatmap.png"):
        rel = f"{row.get('output', '')}/{name}"
        if row.get("output") and (out / rel).is_file():
            cells.append(f'<td><a href="{_esc(rel)}"><img loading="lazy" src="{_esc(rel)}" alt="{name}"></a></td>')
        else:
            cells.append("<td></td>")
    return "".join(cells)


def _artifacts(row: dict[str, Any]) -> str:
    """Name the artifact classes found on any tile, with the fraction of tiles; sorts by the worst."""
    fractions = {k.removeprefix("artifact_"): float(v) for k, v in row.items()
                 if k.startswith("artifact_") and _is_num(v)}
    if not fractions:
        return '<td class="art" data-v="-1">–</td>'
    found = ", ".join(f"{name} {frac:.0%}" for name, frac in sorted(fractions.items(), key=lambda kv: -kv[1])
                      if frac > 0)
    return f'<td class="art" data-v="{max(fractions.values())}">{_esc(found or "none")}</td>'


def _is_num(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _row(row: dict[str, Any], out: Path) -> str:
    status = str(row.get("status", ""))
    name = _esc(row.get("name") or Path(str(row.get("path", ""))).name)
    link = f'<a href="{_esc(row["output"])}/">{name}</a>' if row.get("output") else f"<b>{name}</b>"
    error = f'<div class="err">{_esc(row["error"])}</div>' if row.get("error") else ""
    damaged = _damaged(row)
    notes = [str(row["note"])] if row.get("note") else []
    if status != "failed" and str(row.get("tiles", "")) == "0":
        notes.append("no tissue found: nothing was analysed")
    note = "".join(f'<div class="{"warn" if damaged else "note"}">{_esc(n)}</div>' for n in notes)
    badges = f'<span class="badge {_esc(status)}">{_esc(status)}</span>'
    if damaged:
        badges += ' <span class="badge warn">damaged tiles</span>'
    return (
        f'<tr class="r-{_esc(status)}">{_images(row, out)}'
        f'<td class="slide" data-v="{name}" title="{_esc(row.get("path", ""))}">{link}{error}{note}</td>'
        f'<td data-v="{_STATUS_ORDER.get(status, 9)}">{badges}</td>'
        f'{_num(row, "tissue_mm2", ".1f")}{_num(row, "tiles", ".0f")}{_num(row, "top_anomaly", ".2f")}'
        f'{_num(row, "regions", ".0f")}{_artifacts(row)}{_num(row, "mpp", ".3f")}{_num(row, "seconds", ".1f")}</tr>'
    )


def _damaged(row: dict[str, Any]) -> bool:
    """True when some of the slide's tiles could not be read (its numbers cover the rest only)."""
    return _is_num(row.get("unreadable_tiles")) and float(row["unreadable_tiles"]) > 0


def report_html(rows: list[dict[str, Any]], out: Path, title: str = "pathview scan") -> str:
    """Return the cohort page for ``rows`` (scan.csv rows) whose slide folders lie in ``out``."""
    ordered = sorted(rows, key=lambda r: (_STATUS_ORDER.get(str(r.get("status")), 9), str(r.get("name", ""))))
    counts = {s: sum(1 for r in rows if r.get("status") == s) for s in STATUSES}
    damaged = sum(1 for r in rows if r.get("status") != "failed" and _damaged(r))
    area = sum(float(r["tissue_mm2"]) for r in rows if _is_num(r.get("tissue_mm2")))
    heads = ["thumbnail", "heatmap", "slide (error)", "status", "tissue mm²", "tiles", "top anomaly",
             "regions", "artifacts", "mpp", "time s"]
    encoders = sorted({str(r["encoder"]) for r in rows if r.get("encoder")})
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}: {count(len(rows), 'slide')}</h1>",
        f'<div class="sub">{_esc(str(out))} · updated {time.strftime("%Y-%m-%d %H:%M")} · '
        f"{area:.1f} mm² of tissue · encoder {_esc(', '.join(encoders) or '–')} · "
        "click a column header to sort</div>",
        '<div class="counts">' + "".join(
            f'<span class="badge {s}">{counts[s]} {s}</span>' for s in STATUSES if counts[s] or s in ("ok", "failed"))
        + (f'<span class="badge warn">{damaged} with damaged tiles</span>' if damaged else "") + "</div><br>",
        "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead><tbody>",
        *(_row(r, out) for r in ordered),
        f"</tbody></table><script>{_SCRIPT}</script></body></html>",
    ])
