"""The one settings schema (`settings.py`) and its profiles (`*.yaml`)."""

from .settings import Settings, SettingsError, load_settings, profile_names

__all__ = ["Settings", "SettingsError", "load_settings", "profile_names"]
