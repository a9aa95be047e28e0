"""``tmstate bench bridge``: round trips per second through the real plugin in the harness.

One step = :meth:`Bridge.act` = ACTION out, STATE back over loopback TCP, with the
plugin running in the AngelScript harness (point-mass car, no game). The round-trip
time per step is measured around each ``act`` call; the target is p50 <= 50 µs.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from tmstate.core.state import Action
from tmstate.link.bridge import Bridge
from tmstate.link.harness import HarnessProcess

DEFAULT_STEPS = 5000
TARGET_P50_US = 50.0
WARMUP_STEPS = 200


def run(steps: int | None = None) -> dict:
    steps = DEFAULT_STEPS if steps is None else int(steps)
    rtt_ns = np.empty(steps, dtype=np.int64)
    actions = [Action(steer=0.2, gas=1.0), Action(steer=-0.2, gas=1.0)]
    clock = time.perf_counter_ns
    with HarnessProcess() as harness, Bridge(port=harness.port) as bridge:
        # The race ends at the harness's finish line (no STATE follows a finish): rewind
        # to the start whenever it is reached; rewinds are not counted as steps.
        bridge.prevent_finish(True)
        bridge.next_state()
        start = bridge.save_state()
        for i in range(WARMUP_STEPS):
            if bridge.act(actions[i & 1]).finished:
                bridge.rewind(start)
        bridge.rewind(start)
        rewinds = 0
        for i in tqdm(range(steps), desc="bridge steps", unit="step", mininterval=0.5, leave=False):
            a = clock()
            state = bridge.act(actions[i & 1])
            rtt_ns[i] = clock() - a
            if state.finished:
                bridge.rewind(start)
                rewinds += 1
        elapsed = rtt_ns.sum() / 1e9
    rtt_us = rtt_ns / 1000.0
    p50 = float(np.percentile(rtt_us, 50))
    return {
        "steps": steps,
        "rewinds": rewinds,
        "steps_per_s": steps / elapsed,
        "rtt_p50_us": p50,
        "rtt_p99_us": float(np.percentile(rtt_us, 99)),
        "rtt_max_us": float(rtt_us.max()),
        "target_p50_us": TARGET_P50_US,
        "pass": bool(p50 <= TARGET_P50_US),
    }
