"""Streamlit glue shared by the pages: the app frame (navigation, filters, connection) and the chart style.

Nothing here computes a metric; the pages call ``crm_core`` and draw.
"""
