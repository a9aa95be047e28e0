"""The Wine launcher, driven through a fake ``wine`` (no machine here has Wine or TMNF).

The fake wine records its argv and environment, then behaves like TMLoader: it forks,
the parent exits at once, and the child plays the game — a tiny plugin stand-in that
answers the protocol handshake on the port named in the configstring (``serve``), or
dies (``exit``), or never listens (``silent``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tmstate import cli

from tmstate.ops import launch
from tmstate.errors import AuthError, ConfigError, GameLostError

FAKE_WINE = textwrap.dedent(
    """\
    #!{python}
    import getpass, json, os, re, socket, sys, time
    if sys.argv[1] == "wineboot":  # like Wine's: start the prefix's "services" in the background
        if os.fork() == 0:
            os.setsid()
            time.sleep(600)
        sys.exit(0)
    configstring = sys.argv[-1].split("=", 1)[1]
    port = int(re.search(r"set tmstate_listen [^:;\\s]+:(\\d+)", configstring).group(1))
    # As TMInterface would: `load FILE` runs FILE's commands from the prefix's script folder.
    token = ""
    loaded = re.search(r"load ([^;\\s]+)", configstring)
    if loaded:
        scripts = os.path.join(os.environ["WINEPREFIX"], "drive_c", "users", getpass.getuser(), "Documents",
                               "TMInterface", "Scripts")
        with open(os.path.join(scripts, loaded.group(1))) as fh:
            token = fh.read().split()[-1]
    record = {{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in
              ("DISPLAY", "WINEPREFIX", "WINEDEBUG", "TMSTATE_INSTANCE", "EXTRA")}}}}
    with open(os.path.join(os.environ["FAKE_WINE_RECORDS"], f"{{port}}.json"), "w") as fh:
        json.dump(record, fh)
    mode = os.environ.get("FAKE_WINE_MODE", "serve")
    if mode == "exit":
        sys.exit(3)
    if os.fork() > 0:
        sys.exit(0)  # like TMLoader: the launcher process ends, the game runs on
    if mode == "silent":
        time.sleep(600)
        sys.exit(0)
    from tmstate.link import protocol
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    while True:
        client, _ = server.accept()
        reader = protocol.MessageReader()
        while True:
            data = client.recv(4096)
            if not data:
                break
            for message in reader.feed(data):
                if isinstance(message, protocol.Hello) and token and message.token != token.encode():
                    client.sendall(protocol.encode(protocol.Error(protocol.ErrorCode.AUTH_FAILED, 1, "wrong token")))
                elif isinstance(message, protocol.Hello):
                    client.sendall(protocol.encode(protocol.PluginHello(plugin_version="fake")))
        client.close()
    """
)


def free_port_range(count: int) -> int:
    """A base port with ``count`` consecutive free ports after it."""
    for _ in range(200):
        base = random.randint(20000, 60000 - count)
        try:
            sockets = []
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake wine on disk, a TMLoader.exe file, and a config pointing at both."""
    wine = tmp_path / "bin" / "wine"
    wine.parent.mkdir()
    wine.write_text(FAKE_WINE.format(python=sys.executable))
    wine.chmod(0o755)
    records = tmp_path / "records"
    records.mkdir()
    tmloader = tmp_path / "TMLoader.exe"
    tmloader.write_bytes(b"MZ")
    monkeypatch.setenv("FAKE_WINE_RECORDS", str(records))
    # The fake game imports this checkout's tmstate, not whichever one is installed.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    config = launch.LaunchConfig(
        wine=str(wine),
        tmloader=str(tmloader),
        wine_prefix=str(tmp_path / "prefix"),
        base_port=free_port_range(3),
        run_dir=str(tmp_path / "run"),
        handshake_timeout_s=20.0,
        stop_grace_s=1.0,
        start_prefix=False,  # the fake wine has no wineserver (tests/test_wine.py runs the real one)
    )
    started: list[launch.Launcher] = []
    yield config, records, started
    for launcher in started:  # never leave a fake game behind, even when a test fails
        launcher.stop_all()


FAKE_WINESERVER = textwrap.dedent(
    """\
    #!{python}
    import os, sys, time
    # Like `wineserver -p`: one server per prefix (exit 2 if it runs), forked into the background.
    lock = os.path.join(os.environ["WINEPREFIX"], "server.pid")
    if os.path.exists(lock) and os.path.exists("/proc/" + open(lock).read()):
        sys.exit(2)
    if os.fork() == 0:
        os.setsid()
        open(lock, "w").write(str(os.getpid()))
        time.sleep(600)
    time.sleep(0.1)
    """
)


def records_of(records: Path) -> dict[int, dict]:
    return {int(p.stem): json.loads(p.read_text()) for p in records.glob("*.json")}


def test_plan_gives_each_instance_its_port_and_the_exact_tmloader_command(tmp_path):
    config = launch.LaunchConfig(
        tmloader="/games/TMLoader.exe", wine_prefix="/p", base_port=9000, profile="my profile",
        run_dir=str(tmp_path),
    )
    plans = launch.plan_instances(config, 3)
    assert [p.port for p in plans] == [9000, 9001, 9002]
    assert plans[2].command == (
        "wine", "/games/TMLoader.exe", "run", "TmForever", "my profile",
        "/configstring=set tmstate_listen 127.0.0.1:9002; load tmstate_auth_9002.txt; unload",
    )
    assert plans[0].env["WINEPREFIX"] == "/p" and plans[0].display is None
    assert plans[1].xvfb_command is None
    # The shell form quotes what needs quoting, so it can be pasted into a terminal.
    line = plans[0].shell_lines()[-1]
    assert "'my profile'" in line and "'/configstring=set tmstate_listen 127.0.0.1:9000; load tmstate_auth_9000.txt; unload'" in line
    open_plans = launch.plan_instances(launch.LaunchConfig(base_port=9000, auth=False), 1)
    assert open_plans[0].command[-1] == "/configstring=set tmstate_listen 127.0.0.1:9000"  # auth = false: as before


def test_plan_with_xvfb_gives_each_instance_a_display():
    config = launch.LaunchConfig(xvfb=True, display_base=50)
    plans = launch.plan_instances(config, 2)
    assert [p.display for p in plans] == [":50", ":51"]
    assert plans[1].env["DISPLAY"] == ":51"
    assert plans[1].xvfb_command[:2] == ("Xvfb", ":51")
    assert plans[1].shell_lines()[0].startswith("Xvfb :51 ")


@pytest.mark.parametrize("count, base", [(0, 8477), (2, 65535)])
def test_plan_refuses_bad_counts_and_ports(count, base):
    with pytest.raises(ConfigError):
        launch.plan_instances(launch.LaunchConfig(base_port=base), count)


def test_config_file_then_environment(tmp_path):
    path = tmp_path / "launch.toml"
    path.write_text('[launch]\ntmloader = "/a/TMLoader.exe"\nbase_port = 9100\nxvfb = false\n')
    config = launch.load_config(path, environ={"TMSTATE_BASE_PORT": "9200", "TMSTATE_XVFB": "yes",
                                               "TMSTATE_EXTRA_ENV": "A=1 B='x y'"})
    assert config.tmloader == "/a/TMLoader.exe"  # from the file
    assert config.base_port == 9200 and config.xvfb is True  # the environment wins
    assert config.extra_env == {"A": "1", "B": "x y"}
    # The file may also hold the fields at top level, and be named by TMSTATE_LAUNCH_CONFIG.
    flat = tmp_path / "flat.toml"
    flat.write_text('profile = "p2"\n')
    assert launch.load_config(None, environ={"TMSTATE_LAUNCH_CONFIG": str(flat)}).profile == "p2"


@pytest.mark.parametrize(
    "text, env",
    [
        ("bogus_key = 1\n", {}),
        ("", {"TMSTATE_BASE_PORT": "eighty"}),
        ("", {"TMSTATE_XVFB": "maybe"}),
        ("base_port = 70000\n", {}),
    ],
)
def test_config_errors_are_config_errors(tmp_path, text, env):
    path = tmp_path / "launch.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        launch.load_config(path, environ=env)


def test_dry_run_prints_the_commands_and_starts_nothing(tmp_path, capsys, monkeypatch):
    path = tmp_path / "launch.toml"
    path.write_text(f'tmloader = "/g/TMLoader.exe"\nbase_port = 9300\nrun_dir = "{tmp_path / "run"}"\n'
                    'xvfb = true\nplugin = "plugins/tmstate.as"\n')
    monkeypatch.delenv("TMSTATE_LAUNCH_CONFIG", raising=False)
    assert cli.main(["launch", "-n", "2", "--config", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ("wine /g/TMLoader.exe run TmForever default '/configstring=set tmstate_listen 127.0.0.1:9301; "
            "load tmstate_auth_9301.txt; unload'") in out
    assert "Xvfb :91 -screen 0" in out and "DISPLAY=:91" in out
    assert "Documents/TMInterface/Plugins/tmstate.as" in out
    assert not (tmp_path / "run").exists()


def test_start_waits_for_handshakes_writes_pid_file_and_stop_ends_everything(fake, capsys):
    config, records, started = fake
    launcher = launch.Launcher(config, 2)
    started.append(launcher)
    launcher.start_all(progress=False)
    seen = records_of(records)
    assert sorted(seen) == [config.base_port, config.base_port + 1]
    first = seen[config.base_port]
    port = config.base_port
    assert first["argv"][1:5] == ["run", "TmForever", "default",
                                  f"/configstring=set tmstate_listen 127.0.0.1:{port}; load tmstate_auth_{port}.txt; unload"]
    assert first["env"]["WINEPREFIX"] == config.wine_prefix and first["env"]["WINEDEBUG"] == "-all"
    # Both plugin stand-ins answer the handshake now, from processes the launcher can find again,
    # to the holder of their token only; the token was on no command line, and its script is gone.
    tokens = [launcher.token(i) for i in range(2)]
    assert all(launch.default_probe(p, 2.0, t) for p, t in zip(launcher.ports, tokens))
    with pytest.raises(AuthError):
        launch.default_probe(launcher.ports[0], 2.0)
    assert len(set(tokens)) == 2 and not any(t in " ".join(first["argv"]) for t in tokens)
    assert not list(launch.scripts_folder(Path(config.wine_prefix)).glob("tmstate_auth_*"))
    assert config.pid_file.stat().st_mode & 0o077 == 0  # the pid file holds the tokens: owner only
    pid_file = json.loads(config.pid_file.read_text())
    markers = [r["marker"] for r in pid_file["instances"]]
    assert [r["port"] for r in pid_file["instances"]] == launcher.ports
    assert all(launch.pids_with_marker(m + ".game") for m in markers)

    # `tmstate launch --stop` in another process would only have the pid file: use just that.
    path = Path(config.run_dir) / "stop.toml"
    path.write_text(f'run_dir = "{config.run_dir}"\nstop_grace_s = 1.0\n')
    assert cli.main(["launch", "--stop", "--config", str(path)]) == 0
    assert "stopped 2 process(es)" in capsys.readouterr().out
    assert not config.pid_file.exists()
    assert not any(launch.pids_with_marker(m + ".game") for m in markers)
    assert not any(launch.default_probe(p, 0.5, t) for p, t in zip(launcher.ports, tokens))


def test_a_game_that_dies_before_its_handshake_fails_clearly_and_leaves_nothing(fake, monkeypatch):
    config, records, started = fake
    monkeypatch.setenv("FAKE_WINE_MODE", "exit")
    launcher = launch.Launcher(config, 2)
    started.append(launcher)
    with pytest.raises(GameLostError, match="exited before its plugin answered.*instance_0.log"):
        launcher.start_all(progress=False)
    assert not config.pid_file.exists() and not launcher.instances


def test_a_game_that_never_answers_times_out_and_is_stopped(fake, monkeypatch):
    config, records, started = fake
    monkeypatch.setenv("FAKE_WINE_MODE", "silent")
    launcher = launch.Launcher(config, 1)
    started.append(launcher)
    launcher.start(0)
    marker = launcher.instances[0].marker + ".game"
    with pytest.raises(GameLostError, match="no plugin handshake"):
        launcher.wait_ready(timeout_s=1.0, progress=False)
    assert launch.pids_with_marker(marker)  # wait_ready alone does not stop it ...
    launcher.stop_all()  # ... start_all would; here we stop it ourselves
    assert not launch.pids_with_marker(marker)


def test_restart_brings_back_a_killed_game_on_the_same_port(fake):
    config, records, started = fake
    launcher = launch.Launcher(config, 1)
    started.append(launcher)
    launcher.start_all(progress=False)
    old = launcher.instances[0]
    for pid in launch.pids_with_marker(old.marker + ".game"):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while old.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not old.alive()
    assert not launch.default_probe(old.port, 0.5, old.token)
    new = launcher.restart(0, timeout_s=20)
    assert new.marker != old.marker and new.port == old.port and new.token == old.token
    assert launch.default_probe(new.port, 2.0, new.token)
    assert json.loads(config.pid_file.read_text())["instances"][0]["marker"] == new.marker


def test_a_stopped_game_is_killed_too(fake):
    """A hung (SIGSTOPped) game ignores SIGTERM until continued; stop must still end it."""
    config, records, started = fake
    launcher = launch.Launcher(config, 1)
    started.append(launcher)
    launcher.start_all(progress=False)
    marker = launcher.instances[0].marker + ".game"
    for pid in launch.pids_with_marker(marker):
        os.kill(pid, signal.SIGSTOP)
    launcher.stop(0)
    assert not launch.pids_with_marker(marker)


@pytest.mark.xvfb
def test_xvfb_display_per_instance(fake, monkeypatch):
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (scripts/test.sh installs it)")
    config, records, started = fake
    base = next(n for n in range(150, 400, 2)
                if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X{n + 1}-lock").exists())
    config.xvfb, config.display_base = True, base
    config.extra_env = {"EXTRA": "on"}
    launcher = launch.Launcher(config, 2)
    started.append(launcher)
    launcher.start_all(progress=False)
    seen = records_of(records)
    assert seen[config.base_port]["env"]["DISPLAY"] == f":{base}"
    assert seen[config.base_port + 1]["env"]["DISPLAY"] == f":{base + 1}"
    assert seen[config.base_port]["env"]["EXTRA"] == "on"
    assert Path(f"/tmp/.X11-unix/X{base + 1}").exists()
    xvfb_markers = [i.marker + ".xvfb" for i in launcher.instances.values()]
    assert all(launch.pids_with_marker(m) for m in xvfb_markers)
    launcher.stop_all()
    assert not any(launch.pids_with_marker(m) for m in xvfb_markers)


def test_launch_refuses_missing_wine_or_tmloader(tmp_path):
    config = launch.LaunchConfig(wine="no-such-wine-here", tmloader="", run_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="wine executable"):
        launch.Launcher(config, 1).check_ready_to_start()
    config = launch.LaunchConfig(wine=sys.executable, tmloader=str(tmp_path / "missing.exe"))
    with pytest.raises(ConfigError, match="TMLoader.exe not found"):
        launch.Launcher(config, 1).check_ready_to_start()


def test_install_plugin_copies_into_the_prefix(tmp_path):
    source = tmp_path / "tmstate.as"
    source.write_text("void Main() {}\n")
    target = launch.install_plugin(source, tmp_path / "prefix")
    assert target.read_text() == "void Main() {}\n"
    assert target.parent == launch.plugins_folder(tmp_path / "prefix")
    assert target.parts[-4:] == ("Documents", "TMInterface", "Plugins", "tmstate.as")


def test_launch_cli_refuses_a_running_pid_file_but_replaces_a_stale_one(fake, capsys):
    config, records, started = fake
    path = Path(config.run_dir).parent / "launch.toml"
    path.write_text(
        f'wine = "{config.wine}"\ntmloader = "{config.tmloader}"\nbase_port = {config.base_port}\n'
        f'run_dir = "{config.run_dir}"\nstop_grace_s = 1.0\nstart_prefix = false\nwine_prefix = "{config.wine_prefix}"\n'
    )
    assert cli.main(["launch", "-n", "2", "--config", str(path)]) == 0
    assert "stop with: tmstate launch --stop" in capsys.readouterr().out
    try:
        assert cli.main(["launch", "-n", "2", "--config", str(path)]) == 2  # still running: refused
        assert "already running" in capsys.readouterr().err
        for record in launch.read_pid_file(config.pid_file):  # the games die behind our back
            for pid in launch.pids_with_marker(record["marker"] + ".game"):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        assert cli.main(["launch", "-n", "2", "--config", str(path)]) == 0
        assert "removing stale pid file" in capsys.readouterr().out
        tokens = {r["port"]: r["token"] for r in launch.read_pid_file(config.pid_file)}
        assert all(launch.default_probe(port, 2.0, tokens[port]) for port in (config.base_port, config.base_port + 1))
    finally:
        cli.main(["launch", "--stop", "--config", str(path)])
    assert not config.pid_file.exists()


def test_the_prefix_is_started_under_its_own_id_and_outlives_a_game_restart(fake, tmp_path):
    """start_prefix: wineserver and Wine's services carry the launcher's prefix id, not a
    game's, so restarting instance 0 never ends what instance 1 runs on (real Wine: test_wine)."""
    config, records, started = fake
    server = tmp_path / "bin" / "wineserver"
    server.write_text(FAKE_WINESERVER.format(python=sys.executable))
    server.chmod(0o755)
    config.start_prefix = True
    launcher = launch.Launcher(config, 2)
    started.append(launcher)
    launcher.start_all(progress=False)
    assert launcher.wineserver_executable() == str(server)  # the one next to `wine`
    prefix = launch.read_prefix_record(config.pid_file)
    assert prefix["wine_prefix"] == config.wine_prefix and prefix["created"] is True
    shared = launch.pids_with_marker(prefix["marker"])
    assert len(shared) == 2  # the server and the "services" wineboot left running
    games = [launcher.instances[i].marker + ".game" for i in range(2)]
    assert not set(shared) & {pid for m in games for pid in launch.pids_with_marker(m)}

    launcher.restart(0, timeout_s=20)
    assert sorted(launch.pids_with_marker(prefix["marker"])) == sorted(shared)  # the prefix stayed up
    assert launch.pids_with_marker(games[1]) and launch.default_probe(config.base_port + 1, 2.0, launcher.token(1))
    again = launch.Launcher(config, 2)
    assert again.ensure_prefix() is None  # a running server that is not this launcher's is left alone
    assert launch.stop_from_pid_file(config.pid_file, grace_s=1.0) >= 4
    assert not launch.pids_with_marker(prefix["marker"])
    launcher.instances.clear()
    launcher.prefix = None
