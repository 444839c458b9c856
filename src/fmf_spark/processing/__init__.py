"""The processing layer (see ARCHITECTURE.md)."""
