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

// Input types, as the harness numbers them (the plugin only uses the names).
enum class Input : int { Up = 1, Down = 2, Steer = 5, Gas = 6 };

struct RaceConfig {
    std::vector<double> checkpoints{50.0, 100.0};  // metres along the start direction
    double finish = 150.0;                          // metres along the start direction
    int countdownMs = 1000;                         // race time starts at -countdownMs
    double startX = 100.0;
    double startY = 10.0;
    double startZ = 200.0;
    double startYaw = 0.0;  // radians
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
    using CheckpointHook = std::function<void(int current, int target)>;

    explicit Race(RaceConfig config);

    // Loads the states file named in the config (if any). Returns false with `error` set.
    bool Load(std::string& error);

    void GiveUp();          // restart: countdown, checkpoints and respawns reset
    void Tick(const CheckpointHook& onCheckpoint);  // advance 10 ms of race time
    void Respawn();         // to the last checkpoint (or a restart when none was passed)
    void PreventFinish();   // the race clock keeps running after the finish of this race
    void SetInput(int type, int value);

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
    void CheckCheckpoints(double before, double after, const CheckpointHook& onCheckpoint);
    void ApplyPlayback(const CheckpointHook* onCheckpoint);
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
    bool preventFinish_ = false;
    int32_t steer_ = 0;
    int32_t gas_ = 0;
    bool up_ = false;
    bool down_ = false;
};

}  // namespace harness
