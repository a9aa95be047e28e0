"""The Gymnasium env and what feeds it: action types, observation types, X11 window tools for frames."""
