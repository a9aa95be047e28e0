#!/usr/bin/env python3
"""Regenerate the shipped simulator tracks in reference_lines/ (sim_*.npz).

A thin entry point: the tracks are defined in tmstate.backends.sim.track.SHIPPED_TRACKS.
Usage: python3 scripts/make_sim_tracks.py [OUTPUT_DIR]
"""

import sys

from tmstate.backends.sim.track import REFERENCE_DIR, write_shipped_tracks

if __name__ == "__main__":
    for path in write_shipped_tracks(sys.argv[1] if len(sys.argv) > 1 else REFERENCE_DIR):
        print(path)
