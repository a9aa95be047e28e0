// Plain data types the harness exposes to AngelScript under TMInterface's names.
//
// They are the harness's stand-ins for TMInterface's vec2/vec3/mat3/iso4 value types and
// for the views of the simulation (TM::PlayerInfo, TM::HmsDyna, wheels, engine) that the
// plugin reads through SimulationManager. Only the members the plugin uses exist.
#pragma once

#include <cstdint>

namespace harness {

struct Vec2 {
    float x = 0.0F;
    float y = 0.0F;
};

struct Vec3 {
    float x = 0.0F;
    float y = 0.0F;
    float z = 0.0F;
};

// Row-major 3x3 rotation; its columns are the car's local axes in world coordinates
// (column 2 = forward), which is how the harness writes it into save-state blobs.
struct Mat3 {
    float m[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};

    // R = Ry(yaw) * Rz(roll) * Rx(pitch) (the game's order, per tminterface quat_to_ypw),
    // so that with pitch = roll = 0 forward = (sin yaw, 0, cos yaw), as
    // tmstate.core.state.forward_vector has it.
    static Mat3 FromYawPitchRoll(double yaw, double pitch, double roll);
    void GetYawPitchRoll(float& yaw, float& pitch, float& roll) const;
};

struct Iso4 {
    Mat3 Rotation;
    Vec3 Position;
};

// TMInterface's InputState value type (the inputs in force at this tick).
struct InputStateValue {
    int32_t Steer = 0;
    int32_t Gas = 0;
    bool Up = false;
    bool Down = false;
    bool Left = false;
    bool Right = false;
};

// Views the script reads through handles; the race refreshes them after every change.
struct HmsStateDynaView {
    Iso4 location;
    Vec3 linearSpeed;
    Vec3 angularSpeed;
};

struct HmsDynaView {
    HmsStateDynaView currentState;
};

struct PlayerInfoView {
    int32_t displaySpeed = 0;
    uint32_t curCheckpointCount = 0;
    uint32_t curLap = 0;
    bool raceFinished = false;
    uint32_t checkpointTarget = 0;   // logical checkpoints to finish, laps included (Checkpoints)
    uint32_t physicalCheckpoints = 0;  // checkpoint blocks incl. finish/lap line (CheckpointStates)
};

struct RtStateView {
    bool hasGroundContact = true;
    int32_t contactMaterialId = 0;
};

struct WheelView {
    RtStateView rtState;
};

struct WheelsView {
    WheelView frontLeft;
    WheelView frontRight;
    WheelView backRight;
    WheelView backLeft;
};

struct EngineView {
    int32_t gear = 1;
    float actualRpm = 0.0F;
};

struct CarView {
    EngineView engine;
};

}  // namespace harness
