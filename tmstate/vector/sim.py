"""N simulated cars as one Gymnasium ``VectorEnv``, stepped in one numpy call.

:class:`SimVectorEnv` drives :class:`~tmstate.backends.sim.car.SimCars` with N cars on one
track: the physics of every car is one array step, and so are the action mapping, the
scoring (progress, reward terms, termination) and the telemetry observation. Frames are
rendered per car (one ``cv2.warpPerspective`` each) into one array. It is what
``gymnasium.make_vec("tmstate/TMNF-v0", num_envs=N)`` gives for the simulator (the
registered ``vector_entry_point``; other backends get
:class:`~tmstate.vector.env.TMNFVectorEnv`), and what ``tmstate train`` trains on.

The same rules as :class:`~tmstate.env.env.TMNFEnv` on the sim backend — reward terms
(:mod:`tmstate.core.reward`), termination rules (:mod:`tmstate.core.termination`),
telemetry layout (:data:`tmstate.env.observation.TELEMETRY_FEATURES`), action mapping —
with one difference: progress is the car's arc length on the corridor's own projection
(the simulator's walls forbid shortcuts, so the tracker's anti-shortcut rules have nothing
to refuse); per step it agrees with the single env's tracker within centimetres.

Autoreset: Gymnasium's ``NEXT_STEP`` (default: the step after an episode's end resets that
car and ignores its action, reward 0) or ``SAME_STEP`` (the car is reset in the step that
ended its episode; the last observation is in ``info["final_obs"]``, its info in
``info["final_info"]``). Infos are Gymnasium vector infos: arrays with ``_key`` masks.
Episode logs are not written (use ``TMNFEnv`` with ``log_dir`` for logged episodes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tmstate.backends.sim.car import TICK_MS, CarConfig, SimCars
from tmstate.config import from_dict
from tmstate.core.reward import TERMS
from tmstate.core.termination import FINISHED, NO_PROGRESS, OFF_LINE, TIME_LIMIT
from tmstate.env.action import DISCRETE_ACTIONS
from tmstate.env.observation import TELEMETRY_BOUND, TELEMETRY_FEATURES, FrameStack, TelemetryObservation
from tmstate.errors import ActionError, ConfigError, TmstateError


class SimVectorEnv(VectorEnv):
    """``num_envs`` simulated cars on one track (config as for ``TMNFEnv``, backend ``"sim"``).

    ``SimVectorEnv(num_envs, config=None, *, autoreset_mode="next_step", **overrides)``;
    ``backend_options`` may hold ``car`` (a :class:`~tmstate.backends.sim.car.CarConfig`
    dict), ``width_m`` and ``seed``, as for the sim backend; frames use ``observation.camera``.
    ``start`` spreads starts along the track as in ``TMNFEnv`` (one sampler for all cars,
    drawn from the generator ``reset(seed=...)`` seeds).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, config: Any = None, *, autoreset_mode: str | AutoresetMode = "next_step",
                 **overrides: Any) -> None:
        from tmstate.env.env import DEFAULT_SIM_MAP, make_config, resolve_line

        # gymnasium.make_vec passes a registered id's max_episode_steps: truncate there, as
        # gym.make's TimeLimit would (None: only the env's own termination.time_limit_s).
        self._max_steps = overrides.pop("max_episode_steps", None)
        overrides.pop("render_mode", None)
        c = make_config(config, **overrides)
        if c.backend != "sim":
            raise ConfigError(f"SimVectorEnv drives the simulator, got backend {c.backend!r}; "
                              "use tmstate.vector.make.make_vector_env for the game")
        if int(num_envs) < 1:
            raise ConfigError(f"num_envs must be at least 1, got {num_envs}")
        if c.log_dir:
            raise ConfigError("SimVectorEnv writes no episode logs; leave log_dir empty (TMNFEnv logs episodes)")
        extra = sorted(name for name, weight in c.reward.extra.items() if weight)
        if extra:
            raise ConfigError(f"SimVectorEnv scores the built-in reward terms only, not {', '.join(extra)}; "
                              "step TMNFEnvs (tmstate.vector.make.make_vector_env) for registered terms")
        self.config = c
        self.num_envs = int(num_envs)
        modes = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP,
                 AutoresetMode.NEXT_STEP: AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP: AutoresetMode.SAME_STEP}
        if autoreset_mode not in modes:
            raise ConfigError(f"autoreset_mode must be 'next_step' or 'same_step', got {autoreset_mode!r}")
        self.autoreset_mode = modes[autoreset_mode]
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        options = dict(c.backend_options)
        unknown = set(options) - {"car", "width_m", "seed"}
        if unknown:
            raise ConfigError(f"SimVectorEnv: unknown backend_options {sorted(unknown)}; known: car, seed, width_m")
        car = options.get("car")
        if isinstance(car, dict):
            car = from_dict(CarConfig, car, where="sim car")
        if c.action_period_ms < TICK_MS or c.action_period_ms % TICK_MS:
            raise ConfigError(f"action_period_ms must be a positive multiple of {TICK_MS}, got {c.action_period_ms}")
        self.line = resolve_line(c.map or DEFAULT_SIM_MAP)
        self.cars = SimCars(self.line, self.num_envs, seed=options.get("seed"), config=car, width_m=options.get("width_m"))
        self._ticks = c.action_period_ms // TICK_MS
        # actions
        if c.action == "continuous":
            self.single_action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        elif c.action == "discrete":
            self.single_action_space = spaces.Discrete(len(DISCRETE_ACTIONS))
            self._discrete = np.array([[a.steer, a.gas, float(a.brake)] for a in DISCRETE_ACTIONS])
        else:
            raise ConfigError(f"unknown action type {c.action!r}; choose continuous or discrete")
        # observations
        o = c.observation
        if o.type not in ("telemetry", "frames", "dict"):
            raise ConfigError(f"unknown observation type {o.type!r}; choose telemetry, frames or dict")
        if o.type != "telemetry" and o.frame_source == "x11":
            raise ConfigError("SimVectorEnv renders its own frames; frame_source 'x11' needs the game")
        self._telemetry = TelemetryObservation(self.line, o.lookahead_points, o.lookahead_spacing_m)
        self._fixed = len(TELEMETRY_FEATURES)
        dirs = np.asarray(self._telemetry._dir)
        self._dir_x, self._dir_z = dirs[:, 0].copy(), dirs[:, 1].copy()
        self._table_x = self._telemetry._table[:, 0].copy()
        self._table_z = self._telemetry._table[:, 1].copy()
        self._telemetry_rows = np.ones((self._telemetry.size, self.num_envs))  # rows 6..9 (wheel contacts) stay 1.0
        spaces_: dict[str, spaces.Space] = {}
        if o.type in ("frames", "dict"):
            from tmstate.backends.sim.render import TrackRenderer, camera

            camera(o.camera)
            self._renderer = TrackRenderer(self.line, self.cars.corridor.width_m)
            self._view_camera = o.camera
            self._channels = 1 if o.grayscale else 3
            shape = (o.height, o.width, self._channels * o.stack)
            self._frames = FrameStack(self.num_envs, o.height, o.width, self._channels, o.stack)
            spaces_["frames"] = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        if o.type in ("telemetry", "dict"):
            spaces_["telemetry"] = self._telemetry.space()
        self._obs_type = o.type
        self.single_observation_space = spaces.Dict(spaces_) if o.type == "dict" else next(iter(spaces_.values()))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        # scoring state
        n = self.num_envs
        self._progress = np.zeros(n)
        self._mark_progress = np.zeros(n)
        self._mark_time = np.zeros(n, dtype=np.int64)
        self._autoreset = np.zeros(n, dtype=bool)
        self._steps = np.zeros(n, dtype=np.int64)
        self._no_reason = np.full(n, "", dtype=object)  # termination reasons while no episode ends
        self._started = False
        from tmstate.env.start import StartSampler

        self._starts = StartSampler(c.start, self.line.length_m)
        self._rng = np.random.default_rng(options.get("seed"))
        self.closed = False

    # --- Gymnasium API ------------------------------------------------------------------

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Every car at the start (``seed`` seeds the start-noise generator)."""
        if isinstance(seed, list | tuple):
            seed = seed[0] if seed else None
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.cars.reset(seed=seed)
        self._place(np.arange(self.num_envs))
        self._reset_scores(np.arange(self.num_envs))
        self._autoreset[:] = False
        self._started = True
        obs = self._observe(np.arange(self.num_envs), reset=True)
        return obs, self._infos(self._no_reason.copy(), None)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.closed:
            raise TmstateError("step() on a closed SimVectorEnv; make a new one")
        if not self._started:
            raise TmstateError("step() called before reset(); call reset() first")
        steer, gas, brake = self._inputs(actions)
        n = self.num_envs
        resetting = self._autoreset.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(n, bool)
        any_reset = bool(resetting.any())
        # The cars that step (not resetting); while none resets, masks by it are skipped.
        stepping: Any = ~resetting if any_reset else True

        def stepped(mask: np.ndarray) -> np.ndarray:
            return mask & stepping if any_reset else mask

        cars = self.cars
        prev_arc = self._progress  # replaced below, never written in place
        prev_time = cars.ticks * TICK_MS
        prev_finished = cars.finished.astype(bool)
        cars.step(steer, gas, brake, self._ticks)
        if any_reset:  # cars whose episode ended last step start again; their action is ignored
            held = np.flatnonzero(resetting)
            cars.reset(held)
            self._place(held)
            self._reset_scores(held)
        # scoring
        cfg = self.config
        r, t = cfg.reward, cfg.termination
        time_ms = cars.ticks * TICK_MS
        arc = cars.arc_m.copy()
        if any_reset:
            delta = np.where(stepping, arc - prev_arc, 0.0)
            self._progress = np.where(stepping, arc, self._progress)
            elapsed_ms = np.where(stepping, np.maximum(time_ms - prev_time, 0), 0)
        else:
            delta = arc - prev_arc
            self._progress = arc
            elapsed_ms = np.maximum(time_ms - prev_time, 0)
        finished = cars.finished.astype(bool)
        finished_now = stepped(finished & ~prev_finished)
        lateral = cars.lateral_m
        zeros = np.zeros(n)
        terms = {
            "progress": r.progress * delta,
            "time": -r.time * elapsed_ms,
            "finish": np.where(finished_now, r.finish, 0.0),
            "speed": r.speed * cars.speed() * (elapsed_ms / 1000.0) if r.speed else zeros,
            "lateral": -r.lateral * np.abs(lateral) * (elapsed_ms / 1000.0) if r.lateral else zeros,
        }
        reward = zeros
        for name in TERMS:
            if terms[name] is not zeros:  # a term of weight 0 adds nothing
                reward = terms[name] if reward is zeros else reward + terms[name]
        # termination, in the single env's order
        reason = self._no_reason.copy()
        terminated = stepped(finished)
        if terminated.any():
            reason[terminated] = FINISHED
        if t.max_distance_m:
            off = stepped(~terminated & (np.abs(lateral) > t.max_distance_m))
            if off.any():
                terminated |= off
                reason[off] = OFF_LINE
        moved = stepped((self._progress >= self._mark_progress + t.min_progress_m) | (time_ms < self._mark_time))
        self._mark_progress = np.where(moved, self._progress, self._mark_progress)
        self._mark_time = np.where(moved, time_ms, self._mark_time)
        if t.no_progress_s:
            stuck = stepped(~terminated & ~moved & (time_ms - self._mark_time > t.no_progress_s * 1000.0))
            if stuck.any():
                terminated |= stuck
                reason[stuck] = NO_PROGRESS
        truncated = np.zeros(n, dtype=bool)
        if t.time_limit_s:
            truncated = stepped(~terminated & (time_ms >= t.time_limit_s * 1000.0))
            reason[truncated] = TIME_LIMIT
        self._steps += stepping
        if self._max_steps:
            truncated = truncated | stepped(~terminated & (self._steps >= self._max_steps))
        done = terminated | truncated
        if self.config.start.spread:
            for i in np.flatnonzero(done).tolist():
                self._starts.record_end(float(self._progress[i]))
        obs = self._observe(np.arange(n), reset=False, fresh=resetting)
        infos = self._infos(reason, terms)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            ended = np.flatnonzero(done)
            final_obs = self._copy(obs)
            final_info = infos
            cars.reset(ended)
            self._place(ended)
            self._reset_scores(ended)
            obs = self._observe(ended, reset=True, into=obs)
            infos = self._infos(self._no_reason.copy(), None)
            per_car = np.empty(n, dtype=object)  # filled one by one: np.array would stack equal rows
            for i in ended.tolist():
                per_car[i] = self._index(final_obs, i)
            infos["final_obs"] = per_car
            infos["_final_obs"] = done.copy()
            infos["final_info"] = final_info
            infos["_final_info"] = done.copy()
        self._autoreset = done & (self.autoreset_mode == AutoresetMode.NEXT_STEP)
        if any_reset:
            reward = np.where(resetting, 0.0, reward)
        return obs, reward, terminated, truncated, infos

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    # --- parts ----------------------------------------------------------------------------

    def _inputs(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steer, gas, brake) arrays from a batch of actions, as ``TMNFEnv``'s action type maps them."""
        n = self.num_envs
        if self.config.action == "discrete":
            a = np.asarray(actions)
            if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
                raise ActionError(f"expected {n} integer actions, got {a.shape} {a.dtype}")
            if (a < 0).any() or (a >= len(DISCRETE_ACTIONS)).any():
                raise ActionError(f"discrete actions must be 0..{len(DISCRETE_ACTIONS) - 1}, got {a.min()}..{a.max()}")
            table = self._discrete[a]
            return table[:, 0], table[:, 1], table[:, 2]
        try:
            a = np.asarray(actions, dtype=np.float64).reshape(n, 2)
        except (TypeError, ValueError):
            raise ActionError(f"expected {n} continuous actions of 2 numbers (steer, gas - brake), "
                              f"got {np.shape(actions)}") from None
        if not np.isfinite(a).all():
            raise ActionError("an action is NaN or infinite; the policy output is broken")
        if (np.abs(a) > 1.000001).any():
            raise ActionError("an action is outside [-1, 1]^2; clip it to the action space")
        steer = np.minimum(np.maximum(a[:, 0], -1.0), 1.0)
        pedal = a[:, 1]
        gas = np.where(pedal > 0.0, np.minimum(pedal, 1.0), 0.0)
        threshold = self.config.brake_threshold
        pressed = pedal <= -threshold
        if threshold <= 0.0:  # pedal 0 is not a brake
            pressed &= pedal < 0.0
        return steer, gas, pressed.astype(np.float64)

    def _place(self, idx: np.ndarray) -> None:
        """With ``start`` spread along the track, put the (just reset) cars ``idx`` at drawn starts."""
        if not self.config.start.spread:
            return
        for i in idx.tolist():
            start = self._starts.draw(self._rng)
            self.cars.place(i, start.arc_m, lateral_m=start.lateral_m, speed_mps=start.speed_mps,
                            yaw_offset_rad=start.yaw_offset_rad)

    def _reset_scores(self, idx: np.ndarray) -> None:
        cars = self.cars
        self._progress[idx] = cars.arc_m[idx]
        self._mark_progress[idx] = cars.arc_m[idx]
        self._mark_time[idx] = cars.ticks[idx] * TICK_MS
        self._steps[idx] = 0

    def _telemetry_batch(self) -> np.ndarray:
        """The telemetry vector of every car (the layout of TelemetryObservation.observe).

        Written feature by feature into a (features, cars) buffer (contiguous rows), then
        clipped and turned into (cars, features) float32 in one copy."""
        cars = self.cars
        out = self._telemetry_rows
        yaw = cars.yaw
        s, c = np.sin(yaw), np.cos(yaw)
        vx, vz = cars.vx, cars.vz
        index = cars.index
        dx, dz = self._dir_x.take(index), self._dir_z.take(index)
        np.divide(np.hypot(vx, vz), 50.0, out=out[0])
        np.divide(vx * s + vz * c, 50.0, out=out[1])
        np.divide(vx * c - vz * s, 10.0, out=out[2])
        np.divide(cars.omega, 2.0, out=out[3])
        gear, rpm = self._gear_rpm()
        np.divide(gear, 5.0, out=out[4])
        np.divide(rpm, 10000.0, out=out[5])
        # rows 6..9, the wheel contacts, are 1.0 (set once)
        np.divide(cars.lateral_m, 10.0, out=out[10])
        np.subtract(s * dz, c * dx, out=out[11])
        np.add(s * dx, c * dz, out=out[12])
        out[13] = cars.steer
        out[14] = cars.gas
        out[15] = cars.brake
        arc = cars.arc_m
        tel = self._telemetry
        np.divide(arc, tel._length, out=out[16])
        if tel.points:
            from tmstate.env.observation import TABLE_STEP_M

            k = (tel._steps[:, None] + (arc / TABLE_STEP_M + 0.5)).astype(np.intp)  # (K, n)
            np.minimum(k, tel._table_last, out=k)
            px = self._table_x.take(k) - cars.x
            pz = self._table_z.take(k) - cars.z
            fixed = self._fixed
            np.divide(px * c - pz * s, 50.0, out=out[fixed::2])
            np.divide(px * s + pz * c, 50.0, out=out[fixed + 1::2])
        np.clip(out, -TELEMETRY_BOUND, TELEMETRY_BOUND, out=out)
        return np.ascontiguousarray(out.T, dtype=np.float32)

    def _gear_rpm(self) -> tuple[np.ndarray, np.ndarray]:
        """Gear (1..5) and rpm of every car, as SimCars.state reports them."""
        cars = self.cars
        k = cars._k
        speed = cars.speed()
        if k is not None:
            g = cars.gear
            frac = (speed - k.arrays.gear_low[g]) / k.arrays.rpm_span[g]
            rpm = np.clip(k.rpm_idle + (k.rpm_max - k.rpm_idle) * frac, k.rpm_idle, k.rpm_max)
            return g + 1.0, rpm
        m = cars.model
        tops = np.asarray(cars._gear_list)
        g = np.minimum(np.searchsorted(tops, speed * 1.02, side="left"), len(tops) - 1)
        rpm = np.clip(m.max_rpm * speed / tops[g], m.idle_rpm, m.max_rpm)
        return g + 1.0, rpm

    def _render(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), H, W, C) views of the cars ``idx`` (one batched renderer call)."""
        o = self.config.observation
        cars = self.cars
        views = self._renderer.views(cars.x[idx], cars.z[idx], cars.yaw[idx], o.width, o.height,
                                     self._view_camera, gray=self._channels == 1)
        return views[..., None] if self._channels == 1 else views

    def _observe(self, idx: np.ndarray, reset: bool, fresh: np.ndarray | None = None, into: Any = None) -> Any:
        """Observations of all cars; cars in ``idx`` with ``reset`` get a fresh frame stack."""
        parts: dict[str, np.ndarray] = {}
        if self._obs_type in ("telemetry", "dict"):
            tel = self._telemetry_batch()
            if into is not None:
                old = into["telemetry"] if self._obs_type == "dict" else into
                old[idx] = tel[idx]
                tel = old
            parts["telemetry"] = tel
        if self._obs_type in ("frames", "dict"):
            frames = self._frames
            if reset:
                frames.fill(idx, self._render(idx))
            else:
                new = self._render(np.arange(self.num_envs))
                frames.push(new)
                if fresh is not None and fresh.any():
                    f = np.flatnonzero(fresh)
                    frames.fill(f, new[f])
            parts["frames"] = frames.observation()
        if self._obs_type == "dict":
            return parts
        return next(iter(parts.values()))

    def _infos(self, reason: np.ndarray, terms: dict[str, np.ndarray] | None) -> dict[str, Any]:
        cars = self.cars
        n = self.num_envs
        mask = np.ones(n, dtype=bool)
        infos: dict[str, Any] = {
            "race_time_ms": cars.ticks * TICK_MS, "progress_m": self._progress.copy(),
            "lateral_m": cars.lateral_m.copy(), "termination_reason": reason, "finished": cars.finished.astype(bool),
        }
        if terms is not None:
            infos["reward_terms"] = {k: v.copy() for k, v in terms.items()}
        for key in list(infos):
            infos[f"_{key}"] = mask
        return infos

    @staticmethod
    def _copy(obs: Any) -> Any:
        return {k: v.copy() for k, v in obs.items()} if isinstance(obs, dict) else obs.copy()

    @staticmethod
    def _index(obs: Any, i: int) -> Any:
        return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]

    def __repr__(self) -> str:
        return f"SimVectorEnv({self.num_envs} cars on {self.line.metadata.map_name or self.line.name}, {self.autoreset_mode.value})"


def make_vec(num_envs: int = 1, **kwargs: Any) -> VectorEnv:
    """``gymnasium.make_vec``'s vector entry point for the tmstate ids: the batched
    :class:`SimVectorEnv` for the simulator, :func:`tmstate.vector.make.make_vector_env` else."""
    backend = kwargs.get("backend", (kwargs.get("config") or {}).get("backend", "sim")
                         if isinstance(kwargs.get("config"), dict) else "sim")
    if backend == "sim":
        return SimVectorEnv(num_envs, **kwargs)
    from tmstate.vector.make import make_vector_env

    kwargs.pop("max_episode_steps", None)
    return make_vector_env(num_envs, **kwargs)


def to_sb3(env: SimVectorEnv) -> Any:
    """``env`` as a stable-baselines3 ``VecEnv`` (switched to same-step autoreset, as SB3 expects:
    the last observation in ``info["terminal_observation"]``, ``TimeLimit.truncated`` set)."""
    from stable_baselines3.common.vec_env import VecEnv

    class SimSB3VecEnv(VecEnv):
        """A :class:`SimVectorEnv` behind stable-baselines3's ``VecEnv`` contract."""

        def __init__(self, vector_env: SimVectorEnv) -> None:
            vector_env.autoreset_mode = AutoresetMode.SAME_STEP
            vector_env.metadata = {**vector_env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
            self.vector_env = vector_env
            super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
            self._actions: Any = None

        def reset(self) -> Any:
            seed = next((s for s in self._seeds if s is not None), None)
            obs, _ = self.vector_env.reset(seed=seed)
            self._reset_seeds()
            self._reset_options()
            self.reset_infos = [{} for _ in range(self.num_envs)]
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> Any:
            obs, rewards, terminated, truncated, infos = self.vector_env.step(self._actions)
            dones = terminated | truncated
            final_obs = infos.get("final_obs")
            final_info = infos.get("final_info", infos)
            out = []
            for i in range(self.num_envs):
                source = final_info if dones[i] else infos
                info = {"race_time_ms": int(source["race_time_ms"][i]), "progress_m": float(source["progress_m"][i]),
                        "finished": bool(source["finished"][i]),
                        "termination_reason": str(source["termination_reason"][i]),
                        "TimeLimit.truncated": bool(truncated[i] and not terminated[i])}
                if dones[i] and final_obs is not None:
                    info["terminal_observation"] = final_obs[i]
                out.append(info)
            return obs, rewards.astype(np.float32), dones, out

        def close(self) -> None:
            self.vector_env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.vector_env, attr_name) for _ in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self.vector_env, attr_name, value)

        def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
            method = getattr(self.vector_env, method_name)
            return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False for _ in self._get_indices(indices)]

        def get_images(self) -> list[Any]:
            return []

    return SimSB3VecEnv(env)
