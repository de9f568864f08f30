"""The one settings schema (`settings.py`) and its profiles (`*.yaml`)."""

from .settings import PROFILE_ENV, Settings, SettingsError, default_profile, load_settings, profile_names

__all__ = ["PROFILE_ENV", "Settings", "SettingsError", "default_profile", "load_settings", "profile_names"]
