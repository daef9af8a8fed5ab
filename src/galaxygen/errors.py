"""Exceptions that carry a message meant for the user (the CLI prints them without a traceback)."""


class GalaxygenError(Exception):
    """Base class: the message names the file, key or option and what was expected."""


class BoxFormatError(GalaxygenError):
    """A box file is missing, unreadable, or does not follow the box format."""


class ConfigError(GalaxygenError):
    """A configuration value or option is invalid."""
