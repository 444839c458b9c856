"""The chains layer (see ARCHITECTURE.md)."""
