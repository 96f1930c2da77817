"""The incidents-per-day chart `/stats` attaches."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from PIL import Image

from promptwarden.chart import HEIGHT, WIDTH, incidents_per_day_png

NOW = datetime(2026, 3, 10, 15, tzinfo=UTC)


def test_chart_is_a_png_of_the_expected_size() -> None:
    days = [((NOW - timedelta(days=n)).date(), n % 4) for n in range(30)][::-1]
    data = incidents_per_day_png(days, title="Incidents per day")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    assert incidents_per_day_png([], title="empty").startswith(b"\x89PNG")
