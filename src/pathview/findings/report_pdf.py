"""Lay out the findings report as a PDF (fpdf2): A4 pages, overview first, one block per finding."""

from __future__ import annotations

import io

from fpdf import FPDF
from PIL import Image
from fpdf.enums import XPos, YPos

from .report import AI_DISCLAIMER, ReportData, jpeg_bytes, unicode_font

_SNAP_W, _SNAP_H = 0.75, 92  # snapshot: at most 3/4 of the text width, 92 mm high (two findings a page)


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4", unit="mm")
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=15)
        self.family, self.unicode = "helvetica", False  # Latin-1 only, where no Unicode font is found
        found = unicode_font()
        if found:
            self.add_font("body", "", found[0])
            self.add_font("body", "B", found[1])
            self.family, self.unicode = "body", True

    def text_safe(self, text: str) -> str:
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, self.text_safe(f"pathview findings report - page {self.page_no()}"), align="C")

    def write_line(self, text: str, size: float = 10, bold: bool = False, color=(0, 0, 0), h: float = 5) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.set_text_color(*color)
        self.multi_cell(0, h, self.text_safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def image_fit(self, img, max_w: float, max_h: float) -> None:
        """Place a PIL image at the cursor, as large as fits max_w x max_h mm; move below it."""
        scale = min(max_w / img.width, max_h / img.height)
        w, h = img.width * scale, img.height * scale
        if self.get_y() + h > self.h - self.b_margin:
            self.add_page()
        self.image(io.BytesIO(jpeg_bytes(img)), x=self.l_margin, y=self.get_y(), w=w, h=h)
        self.set_y(self.get_y() + h + 2)


def pdf_bytes(data: ReportData) -> bytes:
    """Return the report as PDF bytes."""
    pdf = _Pdf()
    pdf.add_page()
    pdf.write_line(data.title, size=18, bold=True, h=9)
    pdf.write_line(f"Generated {data.generated} by pathview", size=9, color=(90, 90, 90))
    pdf.ln(2)
    for key, value in data.identity:
        pdf.set_font(pdf.family, "B", 9)
        pdf.cell(45, 5, pdf.text_safe(key))
        pdf.set_font(pdf.family, "", 9)
        pdf.multi_cell(0, 5, pdf.text_safe(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.write_line("Annotations by class", size=11, bold=True)
    for name, color, count, total in data.class_summary:
        pdf.set_fill_color(*color)
        pdf.rect(pdf.l_margin, pdf.get_y() + 1, 3, 3, style="F")
        pdf.set_x(pdf.l_margin + 5)
        pdf.set_font(pdf.family, "", 9)
        pdf.cell(0, 5, pdf.text_safe(f"{name}: {count:,}" + (f", total area {total}" if total else "")),
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if not data.class_summary:
        pdf.write_line("No annotations on this slide.", size=9)
    pdf.ln(2)
    pdf.write_line("Overview" + (" (numbers refer to the findings below)" if data.findings else ""), size=11, bold=True)
    pdf.image_fit(data.overview, pdf.epw, pdf.h - pdf.get_y() - pdf.b_margin)
    for f in data.findings:
        a = f.annotation
        img_h = f.snapshot.height * min(_SNAP_W * pdf.epw / f.snapshot.width, _SNAP_H / f.snapshot.height)
        if f.number == 1 or pdf.get_y() + 25 + img_h > pdf.h - pdf.b_margin:  # title and picture together
            pdf.add_page()
        else:
            pdf.ln(6)
        title = f"Finding {f.number}: {a.class_name or 'Unclassified'}" + (f" - {a.name}" if a.name else "")
        pdf.set_fill_color(*f.color)
        pdf.rect(pdf.l_margin, pdf.get_y() + 1.5, 4, 4, style="F")
        pdf.set_x(pdf.l_margin + 6)
        pdf.write_line(title, size=13, bold=True, h=7)
        pdf.write_line(f"{a.kind}, {a.source}" + (", locked" if a.locked else "") + f"; {f.snapshot_caption}",
                       size=8, color=(90, 90, 90))
        pdf.image_fit(f.snapshot, pdf.epw * _SNAP_W, _SNAP_H)
        for line in f.measurements:
            pdf.write_line(line, size=10)
        if a.note:
            pdf.ln(1)
            pdf.write_line("Note", size=10, bold=True)
            pdf.write_line(a.note, size=10)
        for ans in f.answers:
            pdf.ln(2)
            pdf.write_line(f"Assistant ({ans.model}) - {AI_DISCLAIMER}", size=10, bold=True, color=(160, 60, 0))
            if ans.image_png:
                pdf.image_fit(Image.open(io.BytesIO(ans.image_png)).convert("RGB"), 50, 50)
            pdf.write_line(f"Q: {ans.question}", size=9, color=(60, 60, 60))
            pdf.write_line(f"A: {ans.answer}", size=9)
    if data.not_shown:
        pdf.ln(3)
        pdf.write_line(f"{data.not_shown:,} more objects are counted above and drawn on the overview, "
                       "without their own snapshot.", size=9, color=(90, 90, 90))
    return bytes(pdf.output())
