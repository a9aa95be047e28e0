"""The pure core: game state, reference lines, progress, reward and termination. No I/O but line files."""
