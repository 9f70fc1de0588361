"""Views read snapshots of the store and never reach into a collector."""
