"""Optional Ray cluster back-end (`--ray`): sharded duplicate search and embedding across nodes."""
