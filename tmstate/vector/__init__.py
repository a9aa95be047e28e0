"""Many game instances at once: the recovering vector env and its adapters."""
