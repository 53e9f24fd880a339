"""One chart style for the whole app: a Plotly template set once and one colour per quantity.

The colours and the ``crm`` template live in :mod:`crm_core.figures` (the board pack draws the same charts without
Streamlit); this module makes the template the app's default and re-exports the colours for the pages.
"""

from __future__ import annotations

import plotly.io as pio

from crm_core.figures import COLORS, SEGMENT_COLORS, TEMPLATE

__all__ = ["COLORS", "SEGMENT_COLORS"]

pio.templates.default = TEMPLATE
