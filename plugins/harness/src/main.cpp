// tmstate-harness: a stand-in TMInterface host that runs plugins/tmstate.as unmodified.
//
// NOT the game: it registers the TMInterface API the plugin uses (plugins/API.md) on
// Debian's AngelScript, calls the plugin's callbacks as TMInterface does, and drives a
// point-mass car (or a recorded states file). See plugins/harness/README.md.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host.hpp"
#include "net.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using harness::Host;
using harness::NetSocket;
using harness::RaceConfig;

const char* const kUsage =
    "usage: tmstate-harness [options]\n"
    "  --plugin PATH        plugin to run (default: plugins/tmstate.as of this checkout)\n"
    "  --config CMDS        console commands applied after Main(), like TMInterface's\n"
    "                       /configstring, e.g. --config \"set tmstate_port 8477\" (repeatable)\n"
    "  --scripts-dir DIR    TMInterface's script folder: `load FILE` in a --config runs DIR/FILE's\n"
    "                       immediate commands (how the launcher hands over the auth token)\n"
    "  --check-only         compile the plugin, print AngelScript's messages, exit 0 or 1\n"
    "  --dump-api           print the registered API (symbol<TAB>kind<TAB>declaration) and exit\n"
    "  --angelscript-version  print the AngelScript library version and exit\n"
    "  --realtime           pace ticks at game speed (default: as fast as the client answers)\n"
    "  --states FILE        play back a states CSV instead of the point-mass car\n"
    "  --checkpoints LIST   checkpoint planes in metres along the start direction (default 50,100)\n"
    "  --finish M           finish plane in metres along the start direction (default 150)\n"
    "  --countdown-ms MS    countdown before race time 0 (default 1000)\n"
    "  --start X,Y,Z        start position in metres (default 100,10,200)\n"
    "  --start-yaw RAD      start heading (default 0)\n"
    "  --laps N             laps of the map (default 1; the finish plane is the lap line)\n"
    "  --map-uid UID        GetCurrentChallenge().Uid (default tmstate-harness-straight)\n"
    "  --checkpoint-order O before|after: OnCheckpointCountChanged before (default) or after OnRunStep\n"
    "  --persist FILE       keep TMInterface variables in FILE between runs (builtin.txt model)\n"
    "  --fault NAME         inverted-gas | analog-steer-ignored | drop-inputs (repeatable)\n";

void OnSignal(int /*sig*/) { NetSocket::stopRequested = 1; }

std::vector<double> ParseList(const std::string& text, const char* option) {
    std::vector<double> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        char* end = nullptr;
        double v = std::strtod(item.c_str(), &end);
        if (item.empty() || *end != '\0') {
            std::fprintf(stderr, "tmstate-harness: %s expects numbers separated by commas, got '%s'\n", option,
                         text.c_str());
            std::exit(2);
        }
        out.push_back(v);
    }
    return out;
}

double ParseNumber(const std::string& text, const char* option) {
    std::vector<double> v = ParseList(text, option);
    if (v.size() != 1) {
        std::fprintf(stderr, "tmstate-harness: %s expects one number, got '%s'\n", option, text.c_str());
        std::exit(2);
    }
    return v[0];
}

std::string DefaultPluginPath() {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return "plugins/tmstate.as";
    exe[n] = '\0';
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));             // plugins/harness/build
    std::string path = dir + "/../../tmstate.as";    // plugins/tmstate.as
    char resolved[4096];
    return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

struct Options {
    std::string plugin = DefaultPluginPath();
    std::vector<std::string> config;
    std::string scriptsDir;
    bool checkOnly = false;
    bool dumpApi = false;
    bool realtime = false;
    RaceConfig race;
    Host::Options host;
};

Options ParseOptions(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "tmstate-harness: %s needs a value\n%s", a.c_str(), kUsage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--plugin") {
            o.plugin = value();
        } else if (a == "--config") {
            o.config.push_back(value());
        } else if (a == "--scripts-dir") {
            o.scriptsDir = value();
        } else if (a == "--check-only") {
            o.checkOnly = true;
        } else if (a == "--dump-api") {
            o.dumpApi = true;
        } else if (a == "--angelscript-version") {
            std::printf("%s\n", AngelScript::asGetLibraryVersion());
            std::exit(0);
        } else if (a == "--realtime") {
            o.realtime = true;
        } else if (a == "--states") {
            o.race.statesFile = value();
        } else if (a == "--checkpoints") {
            std::string v = value();
            o.race.checkpoints = v.empty() ? std::vector<double>{} : ParseList(v, "--checkpoints");
        } else if (a == "--finish") {
            o.race.finish = ParseNumber(value(), "--finish");
        } else if (a == "--countdown-ms") {
            o.race.countdownMs = static_cast<int>(ParseNumber(value(), "--countdown-ms"));
            if (o.race.countdownMs < 0 || o.race.countdownMs % 10 != 0) {
                std::fprintf(stderr, "tmstate-harness: --countdown-ms must be a non-negative multiple of 10\n");
                std::exit(2);
            }
        } else if (a == "--start") {
            std::vector<double> p = ParseList(value(), "--start");
            if (p.size() != 3) {
                std::fprintf(stderr, "tmstate-harness: --start expects X,Y,Z\n");
                std::exit(2);
            }
            o.race.startX = p[0];
            o.race.startY = p[1];
            o.race.startZ = p[2];
        } else if (a == "--start-yaw") {
            o.race.startYaw = ParseNumber(value(), "--start-yaw");
        } else if (a == "--laps") {
            o.race.laps = static_cast<int>(ParseNumber(value(), "--laps"));
            if (o.race.laps < 1) {
                std::fprintf(stderr, "tmstate-harness: --laps must be >= 1\n");
                std::exit(2);
            }
        } else if (a == "--map-uid") {
            o.race.mapUid = value();
        } else if (a == "--checkpoint-order") {
            std::string v = value();
            if (v != "before" && v != "after") {
                std::fprintf(stderr, "tmstate-harness: --checkpoint-order takes before or after, got '%s'\n", v.c_str());
                std::exit(2);
            }
            o.host.checkpointAfterRunStep = v == "after";
        } else if (a == "--persist") {
            o.host.persistFile = value();
        } else if (a == "--fault") {
            std::string v = value();
            if (v == "inverted-gas") {
                o.race.faults.invertedGas = true;
            } else if (v == "analog-steer-ignored") {
                o.race.faults.analogSteerIgnored = true;
            } else if (v == "drop-inputs") {
                o.race.faults.dropInputs = true;
            } else {
                std::fprintf(stderr, "tmstate-harness: unknown --fault '%s' (inverted-gas, analog-steer-ignored, drop-inputs)\n",
                             v.c_str());
                std::exit(2);
            }
        } else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "tmstate-harness: unknown option '%s'\n%s", a.c_str(), kUsage);
            std::exit(2);
        }
    }
    return o;
}

// Runs frames until SIGTERM/SIGINT. A frame is the ticks the game runs at the speed in
// force when the frame starts (Host::TicksThisFrame: N per frame at speed N), then Render().
// A SetSpeed during the ticks applies from the next frame; a RewindToState ends the frame's
// ticks (the Linesight pattern: RewindToState(SaveState()) before pausing; plugins/API.md).
void RunLoop(Host& host, bool realtime) {
    constexpr auto kActiveWindow = std::chrono::milliseconds(100);  // full speed while bytes flowed lately
    auto lastTick = Clock::now();
    while (NetSocket::stopRequested == 0) {
        bool ticked = false;
        host.BeginFrame();
        auto now = Clock::now();
        if (host.Speed() > 0 && NetSocket::AnyActiveClient()) {
            const bool fast = !realtime && now - NetSocket::LastActivity() < kActiveWindow;
            int due = host.TicksThisFrame();
            if (!fast) {  // real-time pace: speed x 100 ticks per second, at most one frame's worth
                const double dueMs = std::chrono::duration<double, std::milli>(now - lastTick).count() * host.Speed();
                int byTime = static_cast<int>(dueMs / 10.0);
                if (byTime > due) {  // behind (e.g. after a long wait): do not catch up
                    byTime = due;
                    lastTick = now;
                } else {
                    lastTick += std::chrono::microseconds(static_cast<long>(byTime * 10000.0 / host.Speed()));
                }
                due = byTime;
            } else {
                lastTick = now;
            }
            for (int i = 0; i < due && NetSocket::stopRequested == 0 && NetSocket::AnyActiveClient(); ++i) {
                host.Tick();
                ticked = true;
                if (host.BatchCut()) break;
            }
        } else {
            lastTick = now;
        }
        host.RunQueuedCommandLists();
        host.CallRender();
        if (!ticked) {
            // Idle: no client (or paused). Sleep a little so an idle harness costs ~no CPU.
            std::this_thread::sleep_for(NetSocket::AnyActiveClient() ? std::chrono::milliseconds(1)
                                                                      : std::chrono::milliseconds(10));
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options options = ParseOptions(argc, argv);

    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking calls return so the loop can stop
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    Host host(options.race, options.host);
    if (!host.RegisterApi()) {
        std::fprintf(stderr, "tmstate-harness: registering the TMInterface API failed\n");
        return 3;
    }
    if (options.dumpApi) {
        for (const harness::ApiEntry& e : host.Api()) {
            std::printf("%s\t%s\t%s\n", e.symbol.c_str(), e.kind.c_str(), e.declaration.c_str());
        }
        return 0;
    }
    if (options.checkOnly) host.SetCompileOnly();
    if (!host.Compile(options.plugin)) {
        std::fprintf(stderr, "tmstate-harness: %s does not compile (messages above)\n", options.plugin.c_str());
        return 1;
    }
    if (options.checkOnly) {
        std::fprintf(stderr, "tmstate-harness: %s compiles\n", options.plugin.c_str());
        return 0;
    }
    std::string error;
    if (!host.LoadRace(error)) {
        std::fprintf(stderr, "tmstate-harness: %s\n", error.c_str());
        return 2;
    }

    host.CallGetPluginInfo();
    host.CallMain();
    host.SetScriptsFolder(options.scriptsDir);
    for (const std::string& config : options.config) host.Execute(config);  // the launch configstring
    host.RunQueuedCommandLists();  // command lists the plugin queued in Main() run after it
    for (int i = 0; i < 3 && !NetSocket::anyListening; ++i) host.CallRender();
    if (!NetSocket::anyListening) {
        std::fprintf(stderr, "tmstate-harness: the plugin did not start listening (see its log above)\n");
        host.CallOnDisabled();
        return 2;
    }
    RunLoop(host, options.realtime);
    host.CallOnDisabled();
    host.SaveVariables();
    std::fprintf(stderr, "tmstate-harness: stopped\n");
    return 0;
}
