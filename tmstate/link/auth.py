"""The per-instance auth token: who may drive a game (docs/protocol.md, "Authentication").

Any local process can connect to the plugin's port, so ``tmstate launch`` gives every game
instance a fresh random token and the plugin refuses a HELLO without it. The token must
reach the plugin without showing up where other local users can read it: a command line
is public (``ps``), so the launcher writes it into an owner-only (0600) script file in the
instance's TMInterface script folder (``Documents/TMInterface/Scripts``, TMInterface's
``script_folder``) and the configstring only names that file: ``load FILE`` runs the
file's immediate commands (TMInterface treats a script's untimed lines as console
commands), ``unload`` drops it again. The plugin reads ``tmstate_token`` once when it
starts listening and clears the variable, so it is never saved to ``builtin.txt``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from tmstate.files import atomic_write_text
from tmstate.link.protocol import TOKEN_SIZE

TOKEN_VARIABLE = "tmstate_token"
"""The plugin's TMInterface variable the token is set in."""

OWNER_ONLY = 0o600


def new_token() -> str:
    """A fresh token: ``TOKEN_SIZE`` hex characters (128 random bits)."""
    return secrets.token_hex(TOKEN_SIZE // 2)


def token_script_name(port: int) -> str:
    """The script file (in TMInterface's script folder) that hands instance ``port`` its token."""
    return f"tmstate_auth_{int(port)}.txt"


def write_token_script(folder: Path, port: int, token: str) -> Path:
    """Write the owner-only script that sets the plugin's token; returns its path."""
    return atomic_write_text(Path(folder) / token_script_name(port), f"set {TOKEN_VARIABLE} {token}\n",
                             mode=OWNER_ONLY)


def configstring_commands(bind: str, port: int, with_token: bool) -> str:
    """The console commands a game instance starts with: where it listens (address and port
    together, so no value kept in builtin.txt applies), and the token script if any."""
    commands = f"set tmstate_listen {bind}:{int(port)}"
    if with_token:
        commands += f"; load {token_script_name(port)}; unload"
    return commands
