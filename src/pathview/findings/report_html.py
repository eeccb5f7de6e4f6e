"""Lay out the findings report as one self-contained HTML file (images as data URLs, text escaped)."""

from __future__ import annotations

import base64
from html import escape

from .report import AI_DISCLAIMER, ReportData, jpeg_bytes

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 900px; margin: 2em auto; color: #111; }
table.identity td { padding: 2px 12px 2px 0; vertical-align: top; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; border: 1px solid #555; }
.finding { border-top: 1px solid #ccc; margin-top: 2em; padding-top: 1em; page-break-inside: avoid; }
.meta { color: #555; font-size: 0.85em; }
.note { white-space: pre-wrap; background: #f6f6f6; padding: 0.5em; }
.ai { border-left: 4px solid #b34700; padding-left: 0.8em; margin-top: 1em; }
.ai .tag { color: #b34700; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _img(img, alt: str) -> str:
    data = base64.b64encode(jpeg_bytes(img)).decode("ascii")
    return f'<img src="data:image/jpeg;base64,{data}" alt="{escape(alt)}" width="{img.width}">'


def _swatch(color) -> str:
    return '<span class="swatch" style="background: rgb({},{},{})"></span>'.format(*color)


def html_bytes(data: ReportData) -> bytes:
    """Return the report as UTF-8 HTML."""
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(data.title)}</title>"
           f"<style>{_STYLE}</style></head><body>",
           f"<h1>{escape(data.title)}</h1><p class='meta'>Generated {escape(data.generated)} by pathview</p>",
           "<table class='identity'>"]
    out += [f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in data.identity]
    out.append("</table><h2>Annotations by class</h2><ul>")
    out += [f"<li>{_swatch(color)}{escape(name)}: {count:,}{escape(f', total area {total}') if total else ''}</li>"
            for name, color, count, total in data.class_summary]
    if not data.class_summary:
        out.append("<li>No annotations on this slide.</li>")
    out.append("</ul><h2>Overview</h2>"
               + ("<p class='meta'>Numbers refer to the findings below.</p>" if data.findings else ""))
    out.append(_img(data.overview, "slide overview with annotation outlines"))
    for f in data.findings:
        a = f.annotation
        title = f"Finding {f.number}: {a.class_name or 'Unclassified'}" + (f" - {a.name}" if a.name else "")
        out.append(f"<section class='finding' id='finding-{f.number}'><h3>{_swatch(f.color)}{escape(title)}</h3>")
        meta = f"{a.kind}, {a.source}" + (", locked" if a.locked else "") + f"; {f.snapshot_caption}"
        out.append(f"<p class='meta'>{escape(meta)}</p>{_img(f.snapshot, title)}<ul>")
        out += [f"<li>{escape(line)}</li>" for line in f.measurements]
        out.append("</ul>")
        if a.note:
            out.append(f"<h4>Note</h4><div class='note'>{escape(a.note)}</div>")
        for ans in f.answers:
            seen = ""
            if ans.image_png:
                seen = (f"<img class='seen' src='data:image/png;base64,{base64.b64encode(ans.image_png).decode('ascii')}'"
                        " alt='the region the assistant saw' width='240'>")
            out.append(f"<div class='ai'><p class='tag'>Assistant ({escape(ans.model)}): {escape(AI_DISCLAIMER)}</p>"
                       f"{seen}<p><b>Q:</b> {escape(ans.question)}</p><p><b>A:</b> {escape(ans.answer)}</p></div>")
        out.append("</section>")
    if data.not_shown:
        out.append(f"<p class='meta'>{data.not_shown:,} more objects are counted above and drawn on the overview, "
                   "without their own snapshot.</p>")
    out.append("</body></html>")
    return "\n".join(out).encode("utf-8")
