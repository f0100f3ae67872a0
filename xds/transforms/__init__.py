"""Built-in transforms whose output is XDS: submissions built from documents and values."""
