"""The one exception family of tmstate.

Every error a user can cause or meet derives from :class:`TmstateError`. Messages say what
was expected, what came, and what to do, on one line. Errors about a file carry its path.
"""

from __future__ import annotations

from pathlib import Path


class TmstateError(Exception):
    """Base of every error tmstate raises on purpose."""


class ConfigError(TmstateError, ValueError):
    """A configuration value or a command-line argument is invalid."""


class ActionError(TmstateError, ValueError):
    """An action is NaN or outside the action space."""


class PathError(TmstateError):
    """An error about one file or folder: the path is kept on the exception and always
    named first in the message (``PATH: problem — hint``)."""

    def __init__(self, path: str | Path, problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        message = f"{self.path}: {problem}"
        if hint:
            message += f" — {hint}"
        super().__init__(message)


class FileFormatError(PathError):
    """A file tmstate reads is missing, corrupt, empty or of the wrong shape."""


class FileWriteError(PathError):
    """A file or folder tmstate writes cannot be written (read-only or full disk, no
    permission, a folder or a device where a file belongs)."""


class LogWriteWarning(UserWarning):
    """An episode log could not be written; the env goes on (issued once per env)."""


class ReferenceLineError(FileFormatError):
    """A reference line file (or array) is unusable."""


class ReplayFileError(FileFormatError):
    """A .Replay.Gbx / .Challenge.Gbx file cannot be read."""


class LogFileError(FileFormatError):
    """An episode log file cannot be read."""


# --- game link -------------------------------------------------------------------------


class ProtocolError(TmstateError):
    """Bytes on the wire do not follow docs/protocol.md (truncated, oversized, unknown type)."""


class VersionMismatchError(ProtocolError):
    """The plugin and the Python side speak different protocol versions."""


class BridgeError(TmstateError):
    """A problem talking to the plugin over the socket."""


class NotListeningError(BridgeError, ConnectionRefusedError):
    """Nothing accepts connections on the plugin's address."""


class DisconnectedError(BridgeError, ConnectionError):
    """The plugin closed the connection (game closed, crashed, or dropped us after a timeout)."""


class AuthError(BridgeError):
    """The plugin refused our HELLO: its instance needs a token and ours is missing or wrong."""


class BridgeTimeoutError(BridgeError, TimeoutError):
    """The plugin did not answer within the call's timeout."""


class PluginError(BridgeError):
    """The plugin answered a request with an ERROR message."""

    def __init__(self, code: int, request: int, message: str) -> None:
        self.code = code
        self.request = request
        super().__init__(f"plugin refused request type {request} (error {code}): {message}")


class MapMismatchError(TmstateError):
    """The game has another map loaded than the one the reference line was made on."""


class GameLostError(TmstateError):
    """A game instance crashed or hung and could not be brought back within the retries."""


class WindowError(TmstateError):
    """The game's X11 window cannot be found, captured or moved (no display, no such window)."""


# --- what counts as a lost game ---------------------------------------------------------

CONNECTION_LOST_ERRORS: tuple[type[BaseException], ...] = (
    DisconnectedError, NotListeningError, ProtocolError, ConnectionError)
"""The link to the game is gone (closed, refused, or dropped after garbage on the wire)."""

GAME_LOST_ERRORS: tuple[type[BaseException], ...] = CONNECTION_LOST_ERRORS + (BridgeTimeoutError, TimeoutError)
"""Errors that mean "this game is gone or hung" (as opposed to a bug or a bad setting)."""

NOT_GAME_LOST: tuple[type[BaseException], ...] = (VersionMismatchError,)
"""Subclasses of the above that a restart cannot fix: raised at once."""


def is_game_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means a game crashed or stopped answering (the env and the vector env
    both use this one rule)."""
    return isinstance(exc, GAME_LOST_ERRORS) and not isinstance(exc, NOT_GAME_LOST)


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection is gone (a timeout alone leaves it usable)."""
    return isinstance(exc, CONNECTION_LOST_ERRORS) and not isinstance(exc, NOT_GAME_LOST)
