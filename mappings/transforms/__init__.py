"""Built-in transforms: whole-message conversions a channel applies by name (no I/O)."""
