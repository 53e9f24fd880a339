"""CRM analytics dashboard: the entry script is only a frame (see ui/frame.py); pages live in pages/."""

from ui.frame import run_app

run_app()
