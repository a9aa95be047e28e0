"""One scoring path: from consecutive game states to progress, reward terms and termination.

The env (:meth:`tmstate.env.env.TMNFEnv.step`), ``tmstate rewards compare``
(:mod:`tmstate.tools.compare`) and ``tmstate line-from-replay --check`` all score a step with
:meth:`Scorer.step`, so a return computed offline from logged states is the return the env
paid online, by construction. No I/O here: a scorer sees only states and the line.

One step::

    location = tracker.reset(pos, cps) if the car respawned else tracker.update(pos, cps, finished)
    terms    = reward.terms(prev, state, Δprogress, location)
    terminated, truncated, reason = termination.check(state, progress, location)

The tracker gets the game's ``checkpoint_count`` and ``finished`` every step, so the
checkpoint rules (resync, anti-cut; :mod:`tmstate.core.progress`) run the same online and
offline. The respawn rule: when ``state.respawn_count`` differs from the count seen last, the
car was teleported to its last checkpoint, so it is located afresh (between that checkpoint
and the next when the line knows them) and the location is credited (the anti-shortcut rule
would refuse the backward jump otherwise).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from tmstate.core.progress import Location, ProgressConfig, ProgressTracker
from tmstate.core.reference import ReferenceLine
from tmstate.core.reward import Reward, RewardConfig
from tmstate.core.state import GameState
from tmstate.core.termination import Termination, TerminationConfig


class Scored(NamedTuple):
    """What one step earned (a NamedTuple: built every env step)."""

    location: Location
    progress_m: float  # progress credited so far, after this step
    progress_delta_m: float  # progress credited by this step (negative going backwards)
    terms: dict[str, float]  # weighted reward terms; the reward is their sum
    reward: float
    terminated: bool
    truncated: bool
    reason: str  # termination reason, "" while the episode goes on
    respawned: bool  # the car respawned this step (located afresh)
    resync_m: float  # progress credited by a checkpoint-confirmed resync this step (0.0 if none)
    resynced: bool  # a checkpoint-confirmed resync (or a finish far from the progress) happened this step


class Scorer:
    """Progress tracking, reward and termination of one car on one line (rules in the module doc).

    ``reward`` is a :class:`~tmstate.core.reward.Reward` or its config; ``termination`` and
    ``progress`` are configs (None = defaults). Call :meth:`reset` with the first state of
    every episode, then :meth:`step` with each pair of consecutive states.
    """

    def __init__(self, line: ReferenceLine, reward: Reward | RewardConfig | None = None,
                 termination: TerminationConfig | None = None, progress: ProgressConfig | None = None) -> None:
        self.line = line
        self.tracker = ProgressTracker(line, progress)
        self.reward = reward if isinstance(reward, Reward) else Reward(reward)
        self.termination = Termination(termination)
        self._respawns = 0
        self.resyncs = 0  # checkpoint-confirmed resyncs this episode (respawns included)
        self.resync_m = 0.0  # progress they credited

    @property
    def progress_m(self) -> float:
        """Progress credited so far in this episode (metres of line)."""
        return self.tracker.progress_m

    def reset(self, state: GameState) -> Location:
        """Start an episode at ``state``: locate it globally and credit where it is."""
        location = self.tracker.reset(state.position, state.checkpoint_count, state.finished)
        self._respawns = state.respawn_count
        self.resyncs, self.resync_m = 0, 0.0
        self.termination.reset(state, self.tracker.progress_m)
        return location

    def step(self, prev: GameState, state: GameState) -> Scored:
        """Score the step ``prev -> state`` (``prev`` is the state passed last)."""
        tracker = self.tracker
        before = tracker.progress_m
        respawned = state.respawn_count != self._respawns
        resynced, resync_m = False, 0.0
        if respawned:
            self._respawns = state.respawn_count
            location = tracker.reset(state.position, state.checkpoint_count, state.finished)
        else:
            resyncs, credited = tracker.resyncs, tracker.resync_m
            location = tracker.update(state.position, state.checkpoint_count, state.finished)
            if tracker.resyncs != resyncs:
                resynced, resync_m = True, tracker.resync_m - credited
                self.resyncs += 1
                self.resync_m += resync_m
        progress = tracker.progress_m
        delta = progress - before
        terms = self.reward.terms(prev, state, delta, location)
        terminated, truncated, reason = self.termination.check(state, progress, location)
        return Scored(location, progress, delta, terms, sum(terms.values()), terminated, truncated, reason,
                      respawned, resync_m, resynced)

    def run(self, states: Iterable[GameState]) -> list[Scored]:
        """Reset on the first state, then score every following step (termination not applied:
        every state is scored, as logged)."""
        out: list[Scored] = []
        prev: GameState | None = None
        for state in states:
            if prev is None:
                self.reset(state)
            else:
                out.append(self.step(prev, state))
            prev = state
        return out
