"""The sub-commands' options, one module each (``register(subparsers)``); light: no science imported."""
