"""The simulator layer (see ARCHITECTURE.md)."""
