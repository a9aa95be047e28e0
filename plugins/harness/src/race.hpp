// The harness's stand-in for a TMNF race: a point-mass car (or a played-back states file),
// checkpoint planes, the race clock, save/restore blobs and a synthetic top-view frame.
//
// NOT TMNF physics: a deliberately simple model whose only job is to make the plugin's
// input -> state causality, checkpoints, finish, respawn and rewind testable.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "types.hpp"

namespace harness {

// Input types, as the harness numbers them (plugins only use the names).
enum class Input : int { Up = 1, Down = 2, Left = 3, Right = 4, Steer = 5, Gas = 6 };

// TMNF has no analog acceleration: TMInterface's analog Gas accelerates at <= -19661 and
// brakes at >= 19661, and a larger value is no stronger (TMInterface 1.x docs by its
// author, donadigo/TMInterfacePublic docs.md; plugins/API.md).
constexpr int32_t kGasAccelerateAt = -19661;
constexpr int32_t kGasBrakeAt = 19661;

// Faults the harness can simulate (--fault NAME), so that `tmstate check --game` can be
// shown to catch each one (plugins/harness/README.md).
struct Faults {
    bool invertedGas = false;          // "inverted-gas": accelerate and brake swapped
    bool analogSteerIgnored = false;   // "analog-steer-ignored": no bound analog device
    bool dropInputs = false;           // "drop-inputs": SetInputState has no effect
};

// One OnCheckpointCountChanged / OnLapCountChanged call the race owes the plugin.
struct RaceEvent {
    bool lap = false;  // false: checkpoint count changed; true: lap count changed
    int current = 0;
    int target = 0;
};

struct RaceConfig {
    std::vector<double> checkpoints{50.0, 100.0};  // metres along the start direction
    double finish = 150.0;                          // metres along the start direction
    int countdownMs = 1000;                         // race time starts at -countdownMs
    double startX = 100.0;
    double startY = 10.0;
    double startZ = 200.0;
    double startYaw = 0.0;  // radians
    int laps = 1;           // > 1: a multi-lap map (the finish plane is the lap line)
    std::string mapUid = "tmstate-harness-straight";  // GetCurrentChallenge().Uid
    std::string mapName = "tmstate harness straight";  // GetCurrentChallenge().Name
    Faults faults;
    std::string statesFile;  // when set, play this file back instead of the car model
};

// One row of a states file (see plugins/harness/README.md).
struct StateRow {
    int32_t raceTimeMs = 0;
    double x = 0, y = 0, z = 0;
    double vx = 0, vy = 0, vz = 0;
    double yaw = 0, pitch = 0, roll = 0;
    double speedKmh = -1;  // < 0: derive from the velocity
    int32_t checkpointCount = 0;
    bool finished = false;
};

// Loads a states file; on error returns false and sets `error` to "path:line: problem".
bool LoadStatesFile(const std::string& path, std::vector<StateRow>& rows, int32_t& checkpointTarget,
                    std::string& error);

// Minimum size of a TMInterface SimulationState blob, as tminterface.structs.SimStateData has it.
constexpr size_t kSimStateMinSize = 8356;

class Race {
public:
    explicit Race(RaceConfig config);

    // Loads the states file named in the config (if any). Returns false with `error` set.
    bool Load(std::string& error);

    void GiveUp();          // restart: countdown, checkpoints and respawns reset
    // Advances 10 ms of race time; the checkpoint and lap changes of this tick are
    // appended to `events` (the host calls the plugin's callbacks for them).
    void Tick(std::vector<RaceEvent>& events);
    void Respawn();         // to the last checkpoint (or a restart when none was passed)
    // Undoes the finish while the host runs the OnCheckpointCountChanged of the finishing
    // crossing (`BeginFinishHook`..`EndFinishHook`); elsewhere it has no effect.
    void PreventFinish();
    void BeginFinishHook() { inFinishHook_ = finished_; }
    void EndFinishHook() { inFinishHook_ = false; }
    // speed: the game speed in force (inputs may be dropped above 100, SetInputState docs).
    void SetInput(int type, int value, double speed);
    const RaceConfig& Config() const { return config_; }
    // The console's "map NAME": the harness has one track, so a map load only changes
    // GetCurrentChallenge()'s uid and name (to NAME without .Challenge.Gbx) and restarts.
    void LoadMap(const std::string& name);

    int32_t RaceTime() const { return raceTime_; }
    InputStateValue Inputs() const;

    std::vector<uint8_t> Save() const;
    void Restore(const uint8_t* data, size_t size);  // size >= kSimStateMinSize

    // Synthetic BGRA top view centred on the car, `width` x `height`, top row first.
    void Render(int width, int height, uint8_t* out) const;

    // Views for the script API, refreshed after every change.
    HmsDynaView dyna;
    PlayerInfoView player;
    CarView car;
    WheelsView wheels;

private:
    void StepCar(double dt);
    void CheckCheckpoints(double before, double after, std::vector<RaceEvent>& events);
    void ApplyPlayback(std::vector<RaceEvent>* events);
    int32_t Target() const;
    double Along(double x, double z) const;
    void Publish();

    RaceConfig config_;
    std::vector<double> planes_;  // checkpoint planes then the finish plane
    std::vector<StateRow> rows_;
    int32_t playbackTarget_ = 0;

    // Race state (everything Save/Restore carry).
    int32_t raceTime_ = 0;
    int32_t tickTime_ = 0;
    double x_ = 0, y_ = 0, z_ = 0;
    double yaw_ = 0, pitch_ = 0, roll_ = 0;
    double speed_ = 0;      // m/s along the heading (car model)
    double yawRate_ = 0;    // rad/s
    double vx_ = 0, vy_ = 0, vz_ = 0;  // world velocity
    double speedKmh_ = -1;  // playback: the file's display speed, < 0 = derived
    int32_t cpCount_ = 0;
    bool finished_ = false;
    int32_t respawns_ = 0;
    bool preventFinish_ = false;  // the finish was undone (PreventSimulationFinish)
    bool inFinishHook_ = false;
    int32_t steer_ = 0;
    int32_t gas_ = 0;
    bool up_ = false;
    bool down_ = false;
    bool left_ = false;
    bool right_ = false;
    uint32_t dropCounter_ = 0;
};

}  // namespace harness
