"""The game link: the wire protocol, the TCP bridge to the plugin, and the AngelScript harness that runs it without the game."""
