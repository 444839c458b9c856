"""The connectors layer (see ARCHITECTURE.md)."""
