"""The inference layer (see ARCHITECTURE.md)."""
