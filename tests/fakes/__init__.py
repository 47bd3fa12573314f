"""Local HTTP servers that behave like the platforms the bridge posts to."""
