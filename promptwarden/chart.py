"""A bar chart of incidents per day, drawn with Pillow into PNG bytes.

Pillow rather than matplotlib: small, well kept, no GUI backend or font cache to set up,
and a bar chart needs nothing more than rectangles and a few labels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 50, 20, 40, 50
BACKGROUND = (47, 49, 54)  # Discord's dark theme, so the image sits well in the client
AXIS = (185, 187, 190)
BAR = (88, 101, 242)
TEXT = (220, 221, 222)


def incidents_per_day_png(per_day: Sequence[tuple[date, int]], *, title: str) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((MARGIN_LEFT, 12), title, fill=TEXT, font=font)
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=AXIS, width=1)
    peak = max((count for _, count in per_day), default=0)
    scale_max = max(peak, 1)
    draw.text((8, top - 6), str(scale_max), fill=AXIS, font=font)
    draw.text((8, bottom - 6), "0", fill=AXIS, font=font)
    if per_day:
        slot = (right - left) / len(per_day)
        bar = max(1.0, slot * 0.7)
        label_every = max(1, round(len(per_day) / 8))
        for index, (day, count) in enumerate(per_day):
            x0 = left + index * slot + (slot - bar) / 2
            if count:
                height = (bottom - top) * count / scale_max
                draw.rectangle([x0, bottom - height, x0 + bar, bottom - 1], fill=BAR)
            if index % label_every == 0:
                draw.text((x0, bottom + 8), day.strftime("%m-%d"), fill=AXIS, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
