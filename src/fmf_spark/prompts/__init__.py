"""The prompts layer (see ARCHITECTURE.md)."""
