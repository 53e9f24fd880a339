"""The app's pages: each module has ``render()`` (called by the navigation in ``ui.frame``) and, when Streamlit
runs the file itself because it was opened by URL first, hands over to the frame."""
