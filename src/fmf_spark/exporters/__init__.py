"""The exporters layer (see ARCHITECTURE.md)."""
