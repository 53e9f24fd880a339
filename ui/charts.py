"""One chart style for the whole app: a Plotly template set once and one colour per quantity."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

COLORS = {
    "revenue": "#1f6feb",
    "orders": "#8250df",
    "active_customers": "#1a7f37",
    "new_customers": "#bf8700",
    "aov": "#0a7f86",
    "open_tickets": "#cf222e",
    "accepted": "#1a7f37",
    "rejected": "#cf222e",
}

# One colour per RFM segment on every page (best → worst, green → red; "Not yet a customer" grey).
SEGMENT_COLORS = {
    "Champions": "#116329",
    "Loyal": "#1a7f37",
    "Potential loyalists": "#4ac26b",
    "New": "#0969da",
    "Promising": "#54aeff",
    "Need attention": "#bf8700",
    "About to sleep": "#d4a72c",
    "At risk": "#e16f24",
    "Can't lose them": "#cf222e",
    "Hibernating": "#8c959f",
    "Lost": "#57606a",
    "Not yet a customer": "#d0d7de",
}

pio.templates["crm"] = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13),
        margin=dict(l=10, r=10, t=40, b=10),
        hovermode="x unified",
        xaxis=dict(showgrid=False),
        yaxis=dict(gridcolor="#eaeef2", zeroline=False),
        legend=dict(orientation="h", y=-0.2),
        colorway=list(COLORS.values()),
    )
)
pio.templates.default = "plotly_white+crm"
