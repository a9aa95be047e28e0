"""The embedded simulator: tracks, corridor, the vectorised car, its views, and SimBackend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tmstate.core.state import Action
from tmstate.errors import ConfigError, TmstateError
from tmstate.core.reference import ReferenceLine
from tmstate.backends.sim.backend import SimBackend
from tmstate.backends.sim.car import TICK_MS, CarConfig, SimCars
from tmstate.backends.sim.render import ASPHALT, GRASS, SKY, TrackRenderer
from tmstate.backends.sim.track import (
    REFERENCE_DIR,
    SHIPPED_TRACKS,
    Corridor,
    TrackSpec,
    build_line,
    centre_line,
    left,
    load_track,
    right,
    straight,
    track_names,
)


def straight_line(length: float = 200.0, width: float = 20.0) -> ReferenceLine:
    """A straight line along +z from the origin, with a corridor width."""
    line = ReferenceLine.from_points([[0.0, 0.0, 0.0], [0.0, 0.0, length]], spacing_m=0.5)
    line.metadata.track_width_m = width
    return line


# --- tracks ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHIPPED_TRACKS))
def test_shipped_track_matches_its_generator(name):
    spec = SHIPPED_TRACKS[name]
    shipped = ReferenceLine.load(REFERENCE_DIR / f"{name}.npz")
    built = build_line(spec)
    np.testing.assert_allclose(shipped.points, built.points, atol=1e-9)
    expected_length = sum(p.length_m() for p in spec.pieces)
    assert shipped.length_m == pytest.approx(expected_length, abs=0.01)  # chords of 0.5 m on the arcs
    meta = shipped.metadata
    assert meta.source == "sim-generator"
    assert meta.track_width_m == spec.width_m > 0
    assert len(meta.checkpoints_m) == len(spec.checkpoints_after) >= 1
    assert all(0 < cp < shipped.length_m for cp in meta.checkpoints_m)
    assert np.diff(shipped.cumulative_m).max() <= 0.5 + 1e-9
    assert np.all(shipped.points[:, 1] == 0.0)  # flat ground


def test_easiest_track_is_first_short_and_gentle():
    names = track_names()
    assert names[0] == "sim_easy"
    easy = load_track(names[0])
    assert easy.length_m < min(load_track(n).length_m for n in names[1:])
    radii = [p.blocks for p in SHIPPED_TRACKS["sim_easy"].pieces if p.kind != "straight"]
    assert min(radii) >= 3  # its only bend has a 96 m radius


def test_arcs_turn_the_right_way_and_end_where_geometry_says():
    # A right-hand quarter circle of radius 32 m from the origin heading +z ends at (32, 0, 32), heading +x.
    pts, _ = centre_line(TrackSpec("q", (right(1, 90),)))
    np.testing.assert_allclose(pts[-1], [32.0, 0.0, 32.0], atol=1e-9)
    pts, _ = centre_line(TrackSpec("q", (left(1, 90),)))
    np.testing.assert_allclose(pts[-1], [-32.0, 0.0, 32.0], atol=1e-9)
    pts, ends = centre_line(TrackSpec("s", (straight(1), right(2, 180))))
    np.testing.assert_allclose(pts[ends], [[0.0, 0.0, 32.0], [128.0, 0.0, 32.0]], atol=1e-9)
    assert np.linalg.norm(np.diff(pts, axis=0), axis=1).max() <= 0.5


def test_overlapping_track_is_refused():
    spec = TrackSpec("loop", (straight(1), right(1, 360), straight(1)), width_m=16.0)
    with pytest.raises(ConfigError, match="overlaps itself"):
        build_line(spec)


def test_unknown_track_name_is_a_config_error():
    with pytest.raises(ConfigError, match="sim_easy"):
        load_track("no_such_track")


def test_corridor_projection_signs_and_arc_length():
    line = straight_line(100.0)
    cor = Corridor(line, 20.0)
    # Heading +z, the driver's right is +x (TMNF's left-handed frame).
    x = np.array([3.0, -4.0, 0.0])
    z = np.array([10.25, 50.0, 99.0])
    index, along, lateral = cor.project(x, z, np.array([20, 100, 198]))
    np.testing.assert_allclose(lateral, [3.0, -4.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(cor.arc_length(index, along), [10.25, 50.0, 99.0], atol=1e-9)


# --- the car --------------------------------------------------------------------------


def random_inputs(seed: int, steps: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, steps), rng.uniform(0, 1, steps), rng.uniform(0, 1, steps) > 0.8


def test_same_seed_and_actions_give_identical_states():
    line = load_track("sim_esses")
    config = CarConfig(start_offset_m=2.0, start_yaw_rad=0.1)
    runs = []
    for _ in range(2):
        cars = SimCars(line, 3, seed=7, config=config)
        steer, gas, brake = random_inputs(1, 300)
        trace = []
        for s, g, b in zip(steer, gas, brake):
            cars.step(np.array([s, -s, 0.5 * s]), g, float(b), ticks=5)
            trace.append(np.stack([cars.x, cars.z, cars.yaw, cars.vx, cars.vz, cars.arc_m]).copy())
        runs.append(np.array(trace))
    assert np.array_equal(runs[0], runs[1])
    other = SimCars(line, 3, seed=8, config=config)
    assert not np.array_equal(other.x, SimCars(line, 3, seed=7, config=config).x)


def test_each_car_of_a_batch_moves_like_a_car_alone():
    line = load_track("sim_hairpins")
    steer, gas, brake = random_inputs(3, 200)
    batch = SimCars(line, 4)
    alone = SimCars(line, 1)
    for s, g, b in zip(steer, gas, brake):
        batch.step(np.array([s, 0.0, -s, s]), g, float(b), ticks=5)
        alone.step(s, g, float(b), ticks=5)
    for name in ("x", "z", "yaw", "vx", "vz"):
        np.testing.assert_allclose(getattr(batch, name)[[0, 3]], getattr(alone, name)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("preset", ["calibrated", "previous"])
def test_full_gas_accelerates_and_gears_go_up(preset):
    cars = SimCars(straight_line(2000.0), 1, config=CarConfig(preset=preset))
    model = cars.model
    idle, top = (model.rpm_idle, model.rpm_max) if preset == "calibrated" else (model.idle_rpm, model.max_rpm)
    speeds, gears = [], []
    for _ in range(100):  # 5 s
        cars.step(0.0, 1.0, 0.0, ticks=5)
        state = cars.state(0)
        speeds.append(state.speed)
        gears.append(state.gear)
        assert idle <= state.rpm <= top
    # the calibrated car coasts (a little drag, no thrust) through each upshift's dead time
    assert np.all(np.diff(speeds) > (-0.05 if preset == "calibrated" else 0.0))
    assert speeds[-1] > 25.0
    assert np.all(np.diff(gears) >= 0) and gears[-1] > gears[0]
    assert state.race_time_ms == 100 * 5 * TICK_MS
    assert state.display_speed_kmh == int(speeds[-1] * 3.6)


MEASURED_UPSHIFTS_KMH = (102.0, 162.0, 235.0, 342.0)
"""Upshift speeds of the real car (SIM_CALIBRATION_NOTES.md, from the ghosts' rpm)."""


def test_standing_start_matches_the_real_car():
    """100 km/h in 1.7-1.9 s, 200 km/h in 4.4-4.9 s, upshifts at the measured speeds (real ghosts)."""
    cars = SimCars(straight_line(3000.0), 1)
    reached: dict[int, float] = {}
    shifts: list[float] = []
    gear = 0
    for tick in range(1, 1500):
        before = float(cars.speed()[0]) * 3.6
        cars.step(0.0, 1.0, 0.0, ticks=1)
        kmh = float(cars.speed()[0]) * 3.6
        for target in (100, 200):
            if kmh >= target and target not in reached:
                reached[target] = tick * TICK_MS / 1000.0
        if int(cars.gear[0]) != gear:
            assert int(cars.gear[0]) == gear + 1
            gear = int(cars.gear[0])
            shifts.append(before)
    assert 1.7 <= reached[100] <= 1.9, reached
    assert 4.4 <= reached[200] <= 4.9, reached
    assert len(shifts) == 4
    np.testing.assert_allclose(shifts, MEASURED_UPSHIFTS_KMH, atol=3.0)


def test_walls_keep_the_car_in_the_corridor_and_slow_it():
    line = straight_line(2000.0, width=12.0)
    free = SimCars(line, 1)
    walled = SimCars(line, 1)
    touched = 0
    for k in range(300):
        free.step(0.0, 1.0, 0.0, ticks=5)
        walled.step(1.0 if k % 40 < 20 else -1.0, 1.0, 0.0, ticks=5)  # swerve wall to wall
        assert abs(walled.lateral_m[0]) <= 6.0 - walled.config.car_half_width_m + 1e-9
        touched += int(walled.wall_contact[0])
    assert touched > 10
    assert walled.arc_m[0] < 0.8 * free.arc_m[0]


def test_grip_caps_the_lateral_acceleration():
    """Full lock at speed asks for more than the grip: the car slides, its velocity turns at most grip / v."""
    from tmstate.backends.sim.model import Handling

    cars = SimCars(straight_line(3000.0, width=4000.0), 1)
    for _ in range(60):
        cars.step(0.0, 1.0, 0.0, ticks=5)
    cars.step(1.0, 0.0, 0.0, ticks=40)  # full lock at speed
    assert cars.sliding[0] == 1
    grip = Handling(cars.model)
    for _ in range(20):
        v0 = np.array([cars.vx[0], cars.vz[0]])
        cars.step(1.0, 0.0, 0.0, ticks=1)
        v1 = np.array([cars.vx[0], cars.vz[0]])
        turn = abs(math.atan2(v0[0] * v1[1] - v0[1] * v1[0], v0 @ v1)) / (TICK_MS / 1000.0)
        speed = float(np.linalg.norm(v0))
        assert turn * speed <= grip.grip(speed) * 1.01
        assert abs(cars.omega[0]) * speed > grip.grip(speed)  # the body turns faster: a slide


def test_previous_car_grip_caps_its_yaw_rate():
    cars = SimCars(straight_line(3000.0, width=4000.0), 1, config=CarConfig(preset="previous"))
    for _ in range(60):
        cars.step(0.0, 1.0, 0.0, ticks=5)
    v = cars.speed()[0]
    cars.step(1.0, 0.0, 0.0, ticks=20)  # full lock at speed
    assert cars.sliding[0] == 1
    m = cars.model
    grip = max(m.grip_mps2 - m.grip_loss_per_mps * cars.speed()[0], m.min_grip_mps2)
    assert abs(cars.omega[0]) * cars.speed()[0] <= grip * 1.01
    assert cars.speed()[0] < v  # sliding scrubs speed


def test_back_wall_at_the_start_and_reverse():
    cars = SimCars(straight_line(100.0), 1)
    x0, z0 = cars.x[0], cars.z[0]
    for _ in range(40):
        cars.step(0.0, 0.0, 1.0, ticks=5)  # brake at a standstill reverses
        assert cars.z[0] >= z0 - 1e-9 and cars.arc_m[0] >= 0.0
    assert cars.wall_contact[0] == 1
    assert cars.x[0] == pytest.approx(x0)


def test_finish_freezes_the_car_and_counts_every_checkpoint():
    line = straight_line(60.0)
    line.metadata.checkpoints_m = (20.0, 40.0)
    cars = SimCars(line, 1)
    counts = []
    while not cars.finished[0]:
        cars.step(0.0, 1.0, 0.0, ticks=1)
        counts.append(int(cars.checkpoint_count[0]))
    assert counts[-1] == cars.checkpoint_target == 3
    assert sorted(set(counts)) == [0, 1, 2, 3] and counts == sorted(counts)
    frozen = cars.state(0)
    assert frozen.finished and cars.arc_m[0] == pytest.approx(60.0)
    cars.step(0.0, 1.0, 0.0, ticks=50)
    assert cars.state(0).race_time_ms == frozen.race_time_ms
    np.testing.assert_array_equal(cars.state(0).position, frozen.position)
    cars.reset()
    assert cars.ticks[0] == 0 and not cars.finished[0] and cars.arc_m[0] == 0.0


@pytest.mark.parametrize("n, as_array", [(1, False), (1, True), (2, False), (2, True)])
def test_nan_input_is_refused(n, as_array):
    """On every input path: one car with plain numbers (no numpy), arrays, many cars."""
    from tmstate.errors import ActionError

    cars = SimCars(straight_line(), n)
    for steer, gas in ((float("nan"), 1.0), (0.0, float("inf")), (np.float32("nan"), 0.5)):
        with pytest.raises(ActionError, match="NaN or infinite"):
            cars.step(np.full(n, steer) if as_array else steer, np.full(n, gas) if as_array else gas, 0.0)
    assert cars.ticks[0] == 0  # nothing was stepped


def test_out_of_range_inputs_are_clipped_alike_on_both_paths():
    one, two = SimCars(straight_line(), 1), SimCars(straight_line(), 2)
    for cars in (one, two):
        cars.step(3.0, 7, True, ticks=3)  # an int gas and a bool brake: numbers too
    for name in ("steer", "gas", "brake"):
        assert getattr(one, name)[0] == getattr(two, name)[0] == 1.0, name
    np.testing.assert_array_equal(one.vx[:1], two.vx[:1])
    one.step(-2.0, -1.0, 0.2)
    two.step(-2.0, -1.0, 0.2)
    assert (one.steer[0], one.gas[0], one.brake[0]) == (two.steer[0], two.gas[0], two.brake[0]) == (-1.0, 0.0, 0.0)


def test_save_and_restore_round_trip():
    cars = SimCars(load_track("sim_easy"), 1)
    cars.step(0.3, 1.0, 0.0, ticks=200)
    snapshot = cars.save(0)
    cars.step(-0.5, 1.0, 0.0, ticks=100)
    after = cars.state(0)
    cars.restore(0, snapshot)
    cars.step(-0.5, 1.0, 0.0, ticks=100)
    again = cars.state(0)
    np.testing.assert_array_equal(after.position, again.position)
    assert after.race_time_ms == again.race_time_ms
    with pytest.raises(TmstateError, match="snapshot"):
        cars.restore(0, b"not a snapshot")


# --- views ----------------------------------------------------------------------------


def close_to(pixel, colour, tolerance=12):
    return np.all(np.abs(np.asarray(pixel, dtype=int) - np.asarray(colour)) <= tolerance)


def test_top_view_shows_road_ahead_grass_beside():
    line = straight_line(200.0, width=20.0)
    renderer = TrackRenderer(line)
    image = renderer.view(0.0, 50.0, 0.0, 120, 120, "top")  # 60 m across: 0.5 m per pixel
    assert image.shape == (120, 120, 3) and image.dtype == np.uint8
    car_row = int(0.7 * 119)
    assert close_to(image[car_row - 40, 60 - 8], ASPHALT)  # 20 m ahead, 4 m left: road
    assert close_to(image[car_row - 40, 60 + 40], GRASS)  # 20 m right of the line: grass
    assert not close_to(image[car_row, 60], ASPHALT) and not close_to(image[car_row, 60], GRASS)  # the car


def test_chase_view_has_sky_road_and_the_car():
    line = straight_line(400.0, width=20.0)
    renderer = TrackRenderer(line)
    image = renderer.view(0.0, 100.0, 0.0, 96, 72, "chase")
    assert close_to(image[0, 48], SKY)
    assert close_to(image[71, 5], ASPHALT)  # bottom-left corner: road beside the car
    gray = renderer.view(0.0, 100.0, 0.0, 96, 72, "chase", gray=True)
    assert gray.shape == (72, 96) and gray.dtype == np.uint8
    # Row 10 is ~65 m ahead of the car (horizon at row ~5); column 46 ~2 m left of the centre.
    assert close_to(image[10, 46], ASPHALT)
    turned = renderer.view(0.0, 100.0, math.pi / 2, 96, 72, "chase")  # facing across the road
    assert close_to(turned[10, 46], GRASS)


def sky_fraction(image: np.ndarray) -> float:
    return float((np.abs(image.astype(int) - np.array(SKY)).sum(axis=2) < 12).mean())


@pytest.mark.parametrize("camera_name, most_sky, least_road", [("chase", 0.22, 0.5), ("driver", 0.33, 0.5),
                                                               ("top", 0.0, 0.2)])
def test_frames_are_framed_so_the_track_fills_them(camera_name, most_sky, least_road):
    """At the agents' 64x64 the track fills the frame: a chase view was 39 % sky."""
    from tmstate.backends.sim.track import resolve_line

    line = resolve_line("sim_easy")
    renderer = TrackRenderer(line)
    image = renderer.view(*line.points[20, [0, 2]], 0.0, 64, 64, camera_name)
    assert sky_fraction(image) <= most_sky
    assert float((np.abs(image.astype(int) - np.array(ASPHALT)).sum(axis=2) < 12).mean()) >= least_road


def test_unknown_camera_is_a_config_error():
    with pytest.raises(ConfigError, match="camera"):
        TrackRenderer(straight_line()).view(0, 0, 0, 10, 10, "helicopter")


# --- the backend ----------------------------------------------------------------------


def test_sim_backend_steps_action_periods_and_saves():
    backend = SimBackend("sim_easy", action_period_ms=50)
    start = backend.reset()
    assert start.race_time_ms == 0 and start.checkpoint_target == 2
    state = backend.step(Action(0.0, 1.0, False))
    assert state.race_time_ms == 50 and state.speed > 0 and state.gas == 1.0
    snapshot = backend.save()
    later = backend.step(Action(0.5, 1.0, False))
    assert backend.restore(snapshot).race_time_ms == 50
    np.testing.assert_array_equal(backend.step(Action(0.5, 1.0, False)).position, later.position)
    frame = backend.frame(64, 48)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    with pytest.raises(ConfigError, match="multiple of 10"):
        SimBackend("sim_easy", action_period_ms=55)


def test_single_car_fast_path_matches_the_vector_path():
    """SimCars(n=1) runs in plain Python floats; it must agree with the numpy path (n > 1)."""
    line = load_track("sim_hairpins")
    steer, gas, brake = random_inputs(5, 400)
    one = SimCars(line, 1, compiled=False)
    two = SimCars(line, 2, compiled=False)
    walls = 0
    for s, g, b in zip(steer, gas, brake):
        one.step(s, g, float(b), ticks=5)
        two.step(s, g, float(b), ticks=5)
        walls += int(one.wall_contact[0])
        for name in ("x", "z", "yaw", "vx", "vz", "omega", "arc_m", "arc_max_m", "lateral_m", "along_m"):
            np.testing.assert_allclose(getattr(one, name)[0], getattr(two, name)[0], rtol=0, atol=1e-6, err_msg=name)
        for name in ("index", "ticks", "checkpoint_count", "finished", "wall_contact", "sliding"):
            assert getattr(one, name)[0] == getattr(two, name)[0], name
    assert walls > 0  # the random drive did hit walls, so the wall code was compared too
    # ... and through the finish (frozen afterwards) with the demo controller's kind of driving:
    line = straight_line(80.0)
    line.metadata.checkpoints_m = (30.0,)
    one, two = SimCars(line, 1, compiled=False), SimCars(line, 2, compiled=False)
    for _ in range(120):
        one.step(0.02, 1.0, 0.0, ticks=5)
        two.step(0.02, 1.0, 0.0, ticks=5)
    assert one.finished[0] and two.finished[0]
    assert one.state(0).race_time_ms == two.state(0).race_time_ms
    np.testing.assert_allclose(one.state(0).position, two.state(0).position, atol=1e-9)
    assert one.checkpoint_count[0] == two.checkpoint_count[0] == 2


def test_compiled_kernel_steps_the_cars_of_the_python_paths_bit_for_bit():
    """The C kernel does _step_one's arithmetic in the same order: every car, bit for bit."""
    from tmstate.backends.sim import kernel

    if kernel.library() is None:
        pytest.skip(f"the simulator kernel is not built here: {kernel.status()}")
    line = load_track("sim_hairpins")
    n = 8
    rng = np.random.default_rng(3)
    steer = rng.uniform(-1, 1, (300, n))
    gas = (rng.uniform(0, 1, (300, n)) > 0.2) * rng.uniform(0.4, 1, (300, n))
    brake = (rng.uniform(0, 1, (300, n)) > 0.9).astype(float)
    python = [SimCars(line, 1, compiled=False) for _ in range(n)]
    one = SimCars(line, 1)  # the kernel with one car, driven like python[0]
    batch = SimCars(line, n)
    assert one._kernel is not None and batch._kernel is not None and python[0]._kernel is None
    fields = ("x", "z", "yaw", "vx", "vz", "omega", "delta", "shift", "arc_m", "arc_max_m", "lateral_m", "along_m",
              "gear", "index", "ticks", "checkpoint_count", "finished", "wall_contact", "sliding")
    walls = slides = 0
    for k in range(300):
        batch.step(steer[k], gas[k], brake[k], ticks=5)
        one.step(float(steer[k, 0]), float(gas[k, 0]), float(brake[k, 0]), ticks=5)
        for i, car in enumerate(python):
            car.step(float(steer[k, i]), float(gas[k, i]), float(brake[k, i]), ticks=5)
            for name in fields:
                assert getattr(batch, name)[i] == getattr(car, name)[0], (name, k, i)
            walls += int(car.wall_contact[0])
            slides += int(car.sliding[0])
        for name in fields:
            assert getattr(one, name)[0] == getattr(python[0], name)[0], (name, k)
    assert walls > 100 and slides > 100  # the drive reached the walls and slid
    # through the finish (frozen afterwards), with a checkpoint on the way
    line = straight_line(80.0)
    line.metadata.checkpoints_m = (30.0,)
    compiled, plain = SimCars(line, 3), SimCars(line, 1, compiled=False)
    for _ in range(120):
        compiled.step(0.02, 1.0, 0.0, ticks=5)
        plain.step(0.02, 1.0, 0.0, ticks=5)
    assert compiled.finished.all() and plain.finished[0] and compiled.checkpoint_count[0] == 2
    for name in fields:
        assert getattr(compiled, name)[2] == getattr(plain, name)[0], name


@pytest.mark.parametrize("compiler, why", [("no-such-cc", "no C compiler"), ("false", "could not build")])
def test_without_a_working_compiler_the_python_paths_run(monkeypatch, tmp_path, compiler, why):
    from tmstate.backends.sim import kernel

    monkeypatch.setenv("CC", compiler)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    kernel.library.cache_clear()
    try:
        assert kernel.library() is None and why in kernel.status()
        cars = SimCars(straight_line(), 2)
        assert cars._kernel is None
        cars.step(0.0, 1.0, 0.0, ticks=5)
        assert cars.ticks[0] == 5 and cars.vx[0] ** 2 + cars.vz[0] ** 2 > 0
    finally:
        monkeypatch.undo()
        kernel.library.cache_clear()


@pytest.mark.realdata
def test_sim_drives_a_real_map_line(realdata):
    """The simulator runs on any reference line: here a Linesight line of a real TMNF map (3D)."""
    from tmstate.tools.demo import LineFollower
    from tmstate.env.env import TMNFEnv

    path = realdata / "linesight" / "ESL-Hockolicious_0.5m_cl2.npy"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    line = ReferenceLine.load(path)
    env = TMNFEnv(backend="sim", line=line)
    env.reset()
    controller = LineFollower(line)
    for _ in range(400):  # 20 s of race time
        _, _, terminated, truncated, info = env.step(controller.act(env.state, env.location))
        assert not (terminated or truncated), info["termination_reason"]
    assert info["progress_m"] > 200.0
    assert abs(env.state.position[1] - line.point_at(info["progress_m"])[1]) < 1.0  # height follows the line
    assert env.backend.frame(32, 24).std() > 0


def sharp_corner_line(turn_deg: float = 104.0, width: float = 24.0) -> ReferenceLine:
    """100 m along +z, a turn of ``turn_deg`` to the right within 10 m, 200 m on: the shape of
    A01's TAS line at 530 m, a bend far tighter than the corridor's half-width."""
    pts = [[0.0, 0.0, 0.0], [0.0, 0.0, 100.0]]
    heading = 0.0
    for _ in range(10):  # 1 m steps turning turn_deg / 10 each
        heading += math.radians(turn_deg) / 10
        x, _, z = pts[-1]
        pts.append([x + math.sin(heading), 0.0, z + math.cos(heading)])
    x, _, z = pts[-1]
    pts.append([x + 200.0 * math.sin(heading), 0.0, z + 200.0 * math.cos(heading)])
    line = ReferenceLine.from_points(pts, spacing_m=0.5)
    line.metadata.track_width_m = width
    return line


def _distance_to_line(line: ReferenceLine, x: float, z: float) -> float:
    p = np.asarray(line.points)[:, [0, 2]]
    a, b = p[:-1], p[1:]
    ab = b - a
    t = np.clip(((np.array([x, z]) - a) * ab).sum(axis=1) / (ab * ab).sum(axis=1), 0.0, 1.0)
    return float(np.min(np.linalg.norm(a + t[:, None] * ab - np.array([x, z]), axis=1)))


@pytest.mark.parametrize("n, compiled", [(1, False), (2, False), (1, True), (2, True)])
def test_a_car_driven_straight_into_a_sharp_bend_stays_inside_the_walls(n: int, compiled: bool) -> None:
    """At 290 km/h into a 104-degree bend the car left the corridor through its outer corner:
    past the end of the bend's segments the wall measured the offset from the segment's line
    extended, not the distance to the corridor, and the car flew on (A01's TAS line, docs/training.md)."""
    line = sharp_corner_line()
    cars = SimCars(line, n, compiled=compiled)
    for i in range(n):
        cars.place(i, 60.0, speed_mps=80.0)
    limit = 12.0 - cars.config.car_half_width_m
    worst = 0.0
    for _ in range(200):
        cars.step(0.0, 1.0, 0.0, ticks=5)  # full gas, no steering: straight on into the bend
        for i in range(n):
            worst = max(worst, _distance_to_line(line, float(cars.x[i]), float(cars.z[i])))
    assert worst <= limit + 1e-6
    assert (cars.arc_m >= 100.0).all()  # the car is held at the corner, along the line
