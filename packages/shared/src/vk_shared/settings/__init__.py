"""Settings of the node and the hive, loaded and shown one way (msgspec and the standard library
only): :class:`SettingsSpec` names and loads them; :mod:`vk_shared.settings.cli` gives both
command lines their common options and ``config show``."""

from vk_shared.settings.spec import Loaded, SettingsError, SettingsSpec

__all__ = ["Loaded", "SettingsError", "SettingsSpec"]
