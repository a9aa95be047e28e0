"""File formats: episode logs and Gbx (replays and maps)."""
