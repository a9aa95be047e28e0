"""Backends: where GameStates come from — the real game (tminterface), the embedded simulator (sim/), a logged episode (replay)."""
