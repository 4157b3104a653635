"""The version runsync reports (`--version`, and each export records it)."""
__version__ = "0.1.0"
