// The harness race: point-mass car or states-file playback. See race.hpp and README.md.
#include "race.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace harness {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Point-mass car model constants (README.md, "The point-mass car").
constexpr double kEngineAccel = 12.0;     // m/s^2 at full gas
constexpr double kBrakeDecel = 25.0;      // m/s^2 while braking
constexpr double kRolling = 0.5;          // m/s^2 while moving
constexpr double kDrag = 0.0015;          // 1/m, times speed^2
constexpr double kMinTurnRadius = 20.0;   // m at full steer
constexpr double kMaxYawRate = 2.0;       // rad/s
constexpr double kRoadHalfWidth = 16.0;   // m either side of the start axis
constexpr int32_t kMaterialRoad = 0;      // harness ids, not TMNF's
constexpr int32_t kMaterialGrass = 2;

// Offsets in a SimulationState blob, as tminterface.structs.SimStateData decodes it.
constexpr size_t kOffFlags = 8;
constexpr size_t kOffTimer1 = 16;            // timers[1]: SimStateData.time
constexpr size_t kOffRotation = 688;         // dyna.current_state.rotation, 3x3 float32
constexpr size_t kOffPosition = 724;         // dyna.current_state.position
constexpr size_t kOffLinearSpeed = 736;      // dyna.current_state.linear_speed
constexpr size_t kOffAngularSpeed = 760;     // dyna.current_state.angular_speed
constexpr size_t kOffInputGas = 1728;        // scene_mobil.input_gas (0..1)
constexpr size_t kOffInputBrake = 1732;      // scene_mobil.input_brake (0..1)
constexpr size_t kOffInputSteer = 1736;      // scene_mobil.input_steer (-1..1)
constexpr size_t kOffHarnessRecord = 6940;   // cmd_buffer_core (264 bytes): harness-only
constexpr size_t kOffRaceTime = 7892;        // player_info.race_time
constexpr size_t kOffCpCount = 8024;         // player_info.cur_cp_count
constexpr size_t kOffCurLap = 8028;          // player_info.cur_lap
constexpr size_t kOffRaceFinished = 8032;    // player_info.race_finished
constexpr size_t kOffDisplaySpeed = 8036;    // player_info.display_speed
constexpr size_t kOffNumRespawns = 8340;     // num_respawns
constexpr uint32_t kSimFlags = 1 | 2 | 128;  // SIM_HAS_TIMERS | SIM_HAS_DYNA | SIM_HAS_PLAYER_INFO
constexpr char kHarnessMagic[4] = {'T', 'M', 'S', 'H'};

template <typename T>
void Put(std::vector<uint8_t>& blob, size_t offset, T value) {
    std::memcpy(blob.data() + offset, &value, sizeof(T));
}

template <typename T>
T Get(const uint8_t* data, size_t offset) {
    T value;
    std::memcpy(&value, data + offset, sizeof(T));
    return value;
}

double Finite(double v) { return std::isfinite(v) ? v : 0.0; }

double WrapAngle(double a) {
    a = std::fmod(a + kPi, 2.0 * kPi);
    if (a < 0) a += 2.0 * kPi;
    return a - kPi;
}

double LerpAngle(double a, double b, double t) { return a + WrapAngle(b - a) * t; }

int32_t RoundToInt(double v) { return static_cast<int32_t>(std::lround(v)); }

std::string Trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    size_t e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

}  // namespace

// R = Ry(yaw) * Rz(roll) * Rx(pitch): the order tminterface's util.quat_to_ypw (which
// "uses the internal implementation that the game uses") inverts, checked numerically
// against that function for mixed angles (tests/test_tmi_model.py).
Mat3 Mat3::FromYawPitchRoll(double yaw, double pitch, double roll) {
    const double cy = std::cos(yaw), sy = std::sin(yaw);
    const double cp = std::cos(pitch), sp = std::sin(pitch);
    const double cr = std::cos(roll), sr = std::sin(roll);
    Mat3 r;
    r.m[0][0] = static_cast<float>(cy * cr);
    r.m[0][1] = static_cast<float>(-cy * sr * cp + sy * sp);
    r.m[0][2] = static_cast<float>(cy * sr * sp + sy * cp);
    r.m[1][0] = static_cast<float>(sr);
    r.m[1][1] = static_cast<float>(cr * cp);
    r.m[1][2] = static_cast<float>(-cr * sp);
    r.m[2][0] = static_cast<float>(-sy * cr);
    r.m[2][1] = static_cast<float>(sy * sr * cp + cy * sp);
    r.m[2][2] = static_cast<float>(-sy * sr * sp + cy * cp);
    return r;
}

// The game's way (tminterface util.mat3_to_quat then util.quat_to_ypw): the matrix to a
// quaternion (w, x, y, z), then the quaternion to yaw, pitch, roll, with the same
// handling of the singular case (|2 (x y + z w)| = 1 reads pitch = -+pi/2, roll = 0).
void Mat3::GetYawPitchRoll(float& yaw, float& pitch, float& roll) const {
    double q[4];  // w, x, y, z
    const double trace = static_cast<double>(m[0][0]) + m[1][1] + m[2][2];
    if (trace > 0) {
        const double root = std::sqrt(trace + 1.0);
        const double f = 0.5 / root;
        q[0] = root / 2;
        q[1] = f * (m[2][1] - m[1][2]);
        q[2] = f * (m[0][2] - m[2][0]);
        q[3] = f * (m[1][0] - m[0][1]);
    } else {
        int i = 0;
        if (m[1][1] > m[0][0]) {
            i = 1;
        } else if (m[2][2] > m[0][0]) {
            i = 2;
        }
        const int next[3] = {1, 2, 0};
        const int j = next[i];
        const int k = next[j];
        const double root = std::sqrt(static_cast<double>(m[i][i]) - (static_cast<double>(m[k][k]) + m[j][j]) + 1.0);
        const double f = 0.5 / root;
        q[0] = f * (m[k][j] - m[j][k]);
        q[i + 1] = root / 2;
        q[j + 1] = f * (m[i][j] + m[j][i]);
        q[k + 1] = f * (m[i][k] + m[k][i]);
    }
    constexpr double kEps = 0.00001;
    const double t0 = q[2] * q[1] + q[3] * q[0];
    if (std::fabs(t0 + 0.5) < kEps || t0 + 0.5 <= 0) {
        yaw = static_cast<float>(2.0 * std::atan2(q[1], q[0]));
        pitch = -1.57079637F;
        roll = 0.0F;
        return;
    }
    if (std::fabs(t0 - 0.5) < kEps || t0 - 0.5 >= 0) {
        yaw = static_cast<float>(-2.0 * std::atan2(q[1], q[0]));
        pitch = 1.57079637F;
        roll = 0.0F;
        return;
    }
    yaw = static_cast<float>(std::atan2(2.0 * (q[2] * q[0] - q[3] * q[1]), 1.0 - (q[3] * q[3] + q[2] * q[2]) * 2.0));
    roll = static_cast<float>(std::asin(2.0 * t0));
    pitch = static_cast<float>(std::atan2(2.0 * (q[0] * q[1] - q[2] * q[3]), 1.0 - 2.0 * (q[1] * q[1] + q[3] * q[3])));
}

bool LoadStatesFile(const std::string& path, std::vector<StateRow>& rows, int32_t& checkpointTarget,
                    std::string& error) {
    std::ifstream in(path);
    if (!in) {
        error = path + ": cannot open the states file";
        return false;
    }
    std::map<std::string, size_t> column;
    std::string line;
    int lineNo = 0;
    int32_t target = -1;
    int32_t maxCp = 0;
    rows.clear();
    auto fail = [&](const std::string& problem) {
        error = path + ":" + std::to_string(lineNo) + ": " + problem;
        return false;
    };
    while (std::getline(in, line)) {
        ++lineNo;
        line = Trim(line);
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> cells;
        std::stringstream ss(line);
        std::string cell;
        while (std::getline(ss, cell, ',')) cells.push_back(Trim(cell));
        if (column.empty()) {
            for (size_t i = 0; i < cells.size(); ++i) column[cells[i]] = i;
            for (const char* need : {"race_time_ms", "x", "y", "z"}) {
                if (column.count(need) == 0) {
                    return fail(std::string("header lacks the required column '") + need +
                                "' (needs race_time_ms,x,y,z; see plugins/harness/README.md)");
                }
            }
            continue;
        }
        auto num = [&](const char* name, double fallback, double& out) {
            auto it = column.find(name);
            if (it == column.end() || it->second >= cells.size() || cells[it->second].empty()) {
                out = fallback;
                return true;
            }
            char* end = nullptr;
            out = std::strtod(cells[it->second].c_str(), &end);
            return end != cells[it->second].c_str() && *end == '\0' && std::isfinite(out);
        };
        StateRow row;
        double t = 0, cp = 0, fin = 0, tgt = -1;
        bool ok = num("race_time_ms", NAN, t) && num("x", NAN, row.x) && num("y", NAN, row.y) &&
                  num("z", NAN, row.z) && num("vx", 0, row.vx) && num("vy", 0, row.vy) &&
                  num("vz", 0, row.vz) && num("yaw", 0, row.yaw) && num("pitch", 0, row.pitch) &&
                  num("roll", 0, row.roll) && num("speed_kmh", -1, row.speedKmh) &&
                  num("checkpoint_count", 0, cp) && num("finished", 0, fin) &&
                  num("checkpoint_target", -1, tgt);
        if (!ok || std::isnan(t) || std::isnan(row.x) || std::isnan(row.y) || std::isnan(row.z)) {
            return fail("a value is missing or not a number: '" + line + "'");
        }
        row.raceTimeMs = static_cast<int32_t>(std::lround(t));
        row.checkpointCount = static_cast<int32_t>(std::lround(cp));
        row.finished = fin != 0.0;
        if (!rows.empty() && row.raceTimeMs <= rows.back().raceTimeMs) {
            return fail("race_time_ms must increase from row to row, got " +
                        std::to_string(row.raceTimeMs) + " after " + std::to_string(rows.back().raceTimeMs));
        }
        if (tgt >= 0) target = static_cast<int32_t>(std::lround(tgt));
        maxCp = std::max(maxCp, row.checkpointCount);
        rows.push_back(row);
    }
    if (rows.empty()) {
        error = path + ": no state rows (expected a header line and at least one row)";
        return false;
    }
    checkpointTarget = target >= 0 ? target : maxCp;
    return true;
}

Race::Race(RaceConfig config) : config_(std::move(config)) {
    planes_ = config_.checkpoints;
    std::sort(planes_.begin(), planes_.end());
    planes_.push_back(config_.finish);
    GiveUp();
}

bool Race::Load(std::string& error) {
    if (config_.statesFile.empty()) return true;
    if (!LoadStatesFile(config_.statesFile, rows_, playbackTarget_, error)) return false;
    GiveUp();
    return true;
}

double Race::Along(double x, double z) const {
    return (x - config_.startX) * std::sin(config_.startYaw) + (z - config_.startZ) * std::cos(config_.startYaw);
}

void Race::GiveUp() {
    raceTime_ = -config_.countdownMs;
    x_ = config_.startX;
    y_ = config_.startY;
    z_ = config_.startZ;
    yaw_ = config_.startYaw;
    pitch_ = roll_ = 0;
    speed_ = yawRate_ = 0;
    vx_ = vy_ = vz_ = 0;
    speedKmh_ = -1;
    cpCount_ = 0;
    finished_ = false;
    respawns_ = 0;
    preventFinish_ = false;
    if (!rows_.empty()) ApplyPlayback(nullptr);
    Publish();
}

void Race::SetInput(int type, int value, double speed) {
    if (config_.faults.dropInputs) return;  // fault: the game never processes the input
    // SetInputState docs: above game speed ~100 the game may not process an input; the
    // harness drops every second call there (tmstate's plugin refuses such speeds).
    if (speed > 100.0 && (dropCounter_++ % 2) == 0) return;
    switch (static_cast<Input>(type)) {
        case Input::Steer: steer_ = std::clamp(value, -65536, 65536); break;
        case Input::Gas: gas_ = std::clamp(value, -65536, 65536); break;
        case Input::Up: up_ = value != 0; break;
        case Input::Down: down_ = value != 0; break;
        case Input::Left: left_ = value != 0; break;
        case Input::Right: right_ = value != 0; break;
    }
}

InputStateValue Race::Inputs() const {
    InputStateValue in;
    in.Steer = steer_;
    in.Gas = gas_;
    in.Up = up_;
    in.Down = down_;
    in.Left = left_;
    in.Right = right_;
    return in;
}

int32_t Race::Target() const {
    return rows_.empty() ? static_cast<int32_t>(planes_.size()) * config_.laps : playbackTarget_;
}

void Race::Tick(std::vector<RaceEvent>& events) {
    tickTime_ += 10;
    const int32_t before = raceTime_;
    if (!finished_) raceTime_ += 10;  // the race clock stops at the finish (Linesight: TickTime > RaceTime)
    if (!rows_.empty()) {
        ApplyPlayback(&events);
        return;
    }
    if (before >= 0) {  // the car moves only once the race has started
        const double alongBefore = Along(x_, z_);
        StepCar(0.01);
        Publish();
        if (!finished_ && cpCount_ < Target()) CheckCheckpoints(alongBefore, Along(x_, z_), events);
    }
    Publish();
}

void Race::StepCar(double dt) {
    // TMNF's inputs (plugins/API.md, "Inputs"): acceleration is on or off, from Up or
    // an analog Gas <= -19661; brake from Down or Gas >= 19661. A held Left/Right key is
    // full steer; otherwise the analog Steer (ignored without a bound analog device).
    bool accelerate = up_ || gas_ <= kGasAccelerateAt;
    bool brake = down_ || gas_ >= kGasBrakeAt;
    if (config_.faults.invertedGas) std::swap(accelerate, brake);
    double s = 0.0;
    if (left_ != right_) {
        s = right_ ? 1.0 : -1.0;
    } else if (!config_.faults.analogSteerIgnored) {
        s = std::clamp(steer_ / 65536.0, -1.0, 1.0);
    }
    const double g = accelerate ? 1.0 : 0.0;
    const double b = brake ? 1.0 : 0.0;
    double a = kEngineAccel * g - kDrag * speed_ * speed_;
    if (speed_ > 0) a -= kRolling + kBrakeDecel * b;
    speed_ = std::max(0.0, speed_ + a * dt);
    // tmstate's GameState convention (TMNF's world is left-handed: facing +z, +x is the
    // driver's right): steering right (s > 0) makes yaw grow, steering left makes it shrink.
    yawRate_ = s * std::min(speed_ / kMinTurnRadius, kMaxYawRate);
    yaw_ = WrapAngle(yaw_ + yawRate_ * dt);
    vx_ = std::sin(yaw_) * speed_;
    vy_ = 0;
    vz_ = std::cos(yaw_) * speed_;
    x_ += vx_ * dt;
    z_ += vz_ * dt;
}

void Race::CheckCheckpoints(double before, double after, std::vector<RaceEvent>& events) {
    const int32_t target = Target();
    const auto perLap = static_cast<int32_t>(planes_.size());
    while (cpCount_ < target) {
        const double plane = planes_[cpCount_ % perLap];
        if (!(before < plane && after >= plane)) break;
        ++cpCount_;
        events.push_back(RaceEvent{false, cpCount_, target});
        if (cpCount_ == target) {
            finished_ = true;
        } else if (cpCount_ % perLap == 0) {
            // A lap done on a multi-lap map: the harness's loop is the straight folded
            // onto itself, so the car goes on from the start plane with its speed and heading.
            const double lap = planes_.back();
            x_ -= std::sin(config_.startYaw) * lap;
            z_ -= std::cos(config_.startYaw) * lap;
            before -= lap;
            after -= lap;
        }
        if (cpCount_ % perLap == 0) events.push_back(RaceEvent{true, cpCount_ / perLap, config_.laps});
        Publish();
    }
}

void Race::ApplyPlayback(std::vector<RaceEvent>* events) {
    const int32_t t = raceTime_;
    auto next = std::upper_bound(rows_.begin(), rows_.end(), t,
                                 [](int32_t value, const StateRow& r) { return value < r.raceTimeMs; });
    const StateRow* a;
    const StateRow* b;
    double u = 0;
    if (next == rows_.begin()) {
        a = b = &rows_.front();
    } else if (next == rows_.end()) {
        a = b = &rows_.back();
    } else {
        a = &*(next - 1);
        b = &*next;
        u = static_cast<double>(t - a->raceTimeMs) / (b->raceTimeMs - a->raceTimeMs);
    }
    auto lerp = [u](double p, double q) { return p + (q - p) * u; };
    x_ = lerp(a->x, b->x);
    y_ = lerp(a->y, b->y);
    z_ = lerp(a->z, b->z);
    vx_ = lerp(a->vx, b->vx);
    vy_ = lerp(a->vy, b->vy);
    vz_ = lerp(a->vz, b->vz);
    yaw_ = WrapAngle(LerpAngle(a->yaw, b->yaw, u));
    pitch_ = LerpAngle(a->pitch, b->pitch, u);
    roll_ = LerpAngle(a->roll, b->roll, u);
    speedKmh_ = (a->speedKmh >= 0 && b->speedKmh >= 0) ? lerp(a->speedKmh, b->speedKmh) : -1;
    speed_ = std::sqrt(vx_ * vx_ + vy_ * vy_ + vz_ * vz_);
    yawRate_ = 0;
    const int32_t previous = cpCount_;
    cpCount_ = a->checkpointCount;
    finished_ = a->finished;
    Publish();
    if (events != nullptr) {
        for (int32_t c = previous + 1; c <= cpCount_; ++c) events->push_back(RaceEvent{false, c, playbackTarget_});
    }
}

void Race::Respawn() {
    if (!rows_.empty()) return;  // a played-back file cannot be steered anywhere else
    if (finished_ || cpCount_ >= Target()) {  // back to the last checkpoint before the finish
        finished_ = false;
        preventFinish_ = false;
        cpCount_ = Target() - 1;
    }
    if (cpCount_ == 0) {          // as in TMNF: respawning before any checkpoint restarts
        GiveUp();
        return;
    }
    const auto perLap = static_cast<int32_t>(planes_.size());
    const double d = cpCount_ % perLap == 0 ? 0.0 : planes_[cpCount_ % perLap - 1];  // the lap line at 0
    x_ = config_.startX + std::sin(config_.startYaw) * d;
    z_ = config_.startZ + std::cos(config_.startYaw) * d;
    y_ = config_.startY;
    yaw_ = config_.startYaw;
    speed_ = yawRate_ = 0;
    vx_ = vy_ = vz_ = 0;
    ++respawns_;
    Publish();
}

void Race::LoadMap(const std::string& name) {
    std::string stem = name;
    const std::string suffix = ".Challenge.Gbx";
    if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0) {
        stem.resize(stem.size() - suffix.size());
    }
    size_t slash = stem.find_last_of("/\\");
    if (slash != std::string::npos) stem = stem.substr(slash + 1);
    config_.mapUid = stem;
    config_.mapName = stem;
    GiveUp();
}

void Race::PreventFinish() {
    if (!inFinishHook_ || !finished_) return;  // only in the finishing OnCheckpointCountChanged
    finished_ = false;  // the finish is undone: the race (and its clock) goes on
    preventFinish_ = true;
    Publish();
}

void Race::Publish() {
    HmsStateDynaView& s = dyna.currentState;
    s.location.Rotation = Mat3::FromYawPitchRoll(yaw_, pitch_, roll_);
    s.location.Position = Vec3{static_cast<float>(x_), static_cast<float>(y_), static_cast<float>(z_)};
    s.linearSpeed = Vec3{static_cast<float>(vx_), static_cast<float>(vy_), static_cast<float>(vz_)};
    s.angularSpeed = Vec3{0.0F, static_cast<float>(yawRate_), 0.0F};

    const double speed = std::sqrt(vx_ * vx_ + vy_ * vy_ + vz_ * vz_);
    player.displaySpeed = RoundToInt(speedKmh_ >= 0 ? speedKmh_ : speed * 3.6);
    player.curCheckpointCount = static_cast<uint32_t>(cpCount_);
    const auto perLap = static_cast<int32_t>(planes_.size());
    player.curLap = static_cast<uint32_t>(rows_.empty() ? std::min(cpCount_ / perLap, config_.laps) : 0);
    player.raceFinished = finished_;
    player.checkpointTarget = static_cast<uint32_t>(Target());
    player.physicalCheckpoints = static_cast<uint32_t>(rows_.empty() ? planes_.size() : playbackTarget_);

    const int gear = 1 + std::min(4, static_cast<int>(speed / 20.0));
    car.engine.gear = gear;
    const double inGear = std::clamp((speed - 20.0 * (gear - 1)) / 20.0, 0.0, 1.0);
    car.engine.actualRpm = static_cast<float>(1000.0 + 9000.0 * inGear);

    const double lateral = (x_ - config_.startX) * std::cos(config_.startYaw) -
                           (z_ - config_.startZ) * std::sin(config_.startYaw);
    const int32_t material = std::fabs(lateral) <= kRoadHalfWidth ? kMaterialRoad : kMaterialGrass;
    for (WheelView* w : {&wheels.frontLeft, &wheels.frontRight, &wheels.backRight, &wheels.backLeft}) {
        w->rtState.hasGroundContact = true;
        w->rtState.contactMaterialId = material;
    }
}

std::vector<uint8_t> Race::Save() const {
    std::vector<uint8_t> blob(kSimStateMinSize, 0);
    const HmsStateDynaView& s = dyna.currentState;
    Put<uint32_t>(blob, kOffFlags, kSimFlags);
    Put<int32_t>(blob, kOffTimer1, raceTime_);
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) Put<float>(blob, kOffRotation + 4 * (3 * i + j), s.location.Rotation.m[i][j]);
    }
    const float pos[3] = {s.location.Position.x, s.location.Position.y, s.location.Position.z};
    const float vel[3] = {s.linearSpeed.x, s.linearSpeed.y, s.linearSpeed.z};
    const float ang[3] = {s.angularSpeed.x, s.angularSpeed.y, s.angularSpeed.z};
    for (int i = 0; i < 3; ++i) {
        Put<float>(blob, kOffPosition + 4 * i, pos[i]);
        Put<float>(blob, kOffLinearSpeed + 4 * i, vel[i]);
        Put<float>(blob, kOffAngularSpeed + 4 * i, ang[i]);
    }
    Put<float>(blob, kOffInputGas, up_ || gas_ <= kGasAccelerateAt ? 1.0F : 0.0F);
    Put<float>(blob, kOffInputBrake, down_ || gas_ >= kGasBrakeAt ? 1.0F : 0.0F);
    Put<float>(blob, kOffInputSteer, static_cast<float>(steer_ / 65536.0));
    Put<int32_t>(blob, kOffRaceTime, raceTime_);
    Put<uint32_t>(blob, kOffCpCount, static_cast<uint32_t>(cpCount_));
    Put<uint32_t>(blob, kOffCurLap, player.curLap);
    Put<uint32_t>(blob, kOffRaceFinished, finished_ ? 1U : 0U);
    Put<int32_t>(blob, kOffDisplaySpeed, player.displaySpeed);
    Put<uint32_t>(blob, kOffNumRespawns, static_cast<uint32_t>(respawns_));

    // Harness-only record with the exact (double precision) state, so a rewind is exact.
    size_t o = kOffHarnessRecord;
    std::memcpy(blob.data() + o, kHarnessMagic, 4);
    o += 8;
    for (double v : {x_, y_, z_, yaw_, pitch_, roll_, speed_, yawRate_, vx_, vy_, vz_, speedKmh_}) {
        Put<double>(blob, o, v);
        o += 8;
    }
    for (int32_t v : {raceTime_, tickTime_, cpCount_, static_cast<int32_t>(finished_), respawns_,
                      static_cast<int32_t>(preventFinish_), steer_, gas_, static_cast<int32_t>(up_),
                      static_cast<int32_t>(down_), static_cast<int32_t>(left_), static_cast<int32_t>(right_)}) {
        Put<int32_t>(blob, o, v);
        o += 4;
    }
    return blob;
}

void Race::Restore(const uint8_t* data, size_t size) {
    if (size < kSimStateMinSize) return;  // callers check; a short blob is never read
    if (std::memcmp(data + kOffHarnessRecord, kHarnessMagic, 4) == 0) {
        size_t o = kOffHarnessRecord + 8;
        double* doubles[] = {&x_, &y_, &z_, &yaw_, &pitch_, &roll_, &speed_, &yawRate_, &vx_, &vy_, &vz_, &speedKmh_};
        for (double* d : doubles) {
            *d = Finite(Get<double>(data, o));
            o += 8;
        }
        int32_t ints[12];
        for (int32_t& v : ints) {
            v = Get<int32_t>(data, o);
            o += 4;
        }
        raceTime_ = ints[0];
        tickTime_ = ints[1];
        cpCount_ = ints[2];
        finished_ = ints[3] != 0;
        respawns_ = ints[4];
        preventFinish_ = ints[5] != 0;
        steer_ = std::clamp(ints[6], -65536, 65536);
        gas_ = std::clamp(ints[7], -65536, 65536);
        up_ = ints[8] != 0;
        down_ = ints[9] != 0;
        left_ = ints[10] != 0;
        right_ = ints[11] != 0;
    } else {  // a blob from elsewhere: use the public fields tminterface decodes
        Mat3 r;
        for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 3; ++j) r.m[i][j] = static_cast<float>(Finite(Get<float>(data, kOffRotation + 4 * (3 * i + j))));
        }
        float yaw = 0, pitch = 0, roll = 0;
        r.GetYawPitchRoll(yaw, pitch, roll);
        yaw_ = Finite(yaw);
        pitch_ = Finite(pitch);
        roll_ = Finite(roll);
        x_ = Finite(Get<float>(data, kOffPosition));
        y_ = Finite(Get<float>(data, kOffPosition + 4));
        z_ = Finite(Get<float>(data, kOffPosition + 8));
        vx_ = Finite(Get<float>(data, kOffLinearSpeed));
        vy_ = Finite(Get<float>(data, kOffLinearSpeed + 4));
        vz_ = Finite(Get<float>(data, kOffLinearSpeed + 8));
        speed_ = std::sqrt(vx_ * vx_ + vy_ * vy_ + vz_ * vz_);
        yawRate_ = Finite(Get<float>(data, kOffAngularSpeed + 4));
        speedKmh_ = -1;
        raceTime_ = Get<int32_t>(data, kOffRaceTime);
        cpCount_ = static_cast<int32_t>(Get<uint32_t>(data, kOffCpCount));
        finished_ = Get<uint32_t>(data, kOffRaceFinished) != 0;
        respawns_ = static_cast<int32_t>(Get<uint32_t>(data, kOffNumRespawns));
        preventFinish_ = false;
        steer_ = RoundToInt(std::clamp(Finite(Get<float>(data, kOffInputSteer)), -1.0, 1.0) * 65536.0);
        gas_ = 0;  // scene_mobil.input_gas is the acceleration in force (0 or 1 in TMNF)
        up_ = Get<float>(data, kOffInputGas) > 0.5F;
        down_ = Get<float>(data, kOffInputBrake) > 0.5F;
        left_ = right_ = false;
    }
    cpCount_ = std::clamp(cpCount_, 0, Target());
    if (!rows_.empty()) {
        const int32_t respawns = respawns_;
        cpCount_ = 0;
        ApplyPlayback(nullptr);
        respawns_ = respawns;
    }
    Publish();
}

void Race::Render(int width, int height, uint8_t* out) const {
    const double scale = 4.0 * width / 640.0;  // pixels per metre
    const double cx = x_, cz = z_;
    const double fx = std::sin(yaw_), fz = std::cos(yaw_);
    const double dirX = std::sin(config_.startYaw), dirZ = std::cos(config_.startYaw);
    for (int py = 0; py < height; ++py) {
        const double wz = cz + (height / 2.0 - py - 0.5) / scale;  // +z is up in the image
        for (int px = 0; px < width; ++px) {
            const double wx = cx + (px + 0.5 - width / 2.0) / scale;
            uint8_t b, g, r;
            const double along = (wx - config_.startX) * dirX + (wz - config_.startZ) * dirZ;
            const double lateral = (wx - config_.startX) * dirZ - (wz - config_.startZ) * dirX;
            const bool dark = ((static_cast<long>(std::floor(wx / 8.0)) + static_cast<long>(std::floor(wz / 8.0))) & 1) != 0;
            if (std::fabs(lateral) <= kRoadHalfWidth) {
                b = g = r = dark ? 90 : 110;
            } else {
                b = 40;
                g = dark ? 110 : 130;
                r = 40;
            }
            for (size_t i = 0; i < planes_.size(); ++i) {
                if (std::fabs(along - planes_[i]) < 0.6) {
                    const bool isFinish = i + 1 == planes_.size();
                    b = 255;
                    g = isFinish ? 255 : 80;
                    r = isFinish ? 255 : 40;
                }
            }
            const double dx = wx - cx, dz = wz - cz;
            const double ahead = dx * fx + dz * fz;
            const double side = dx * fz - dz * fx;
            if (dx * dx + dz * dz < 4.0) {
                b = 30;
                g = 30;
                r = 220;
            } else if (ahead > 0 && ahead < 5.0 && std::fabs(side) < 0.4) {
                b = 0;
                g = 220;
                r = 255;
            }
            uint8_t* p = out + (static_cast<size_t>(py) * width + px) * 4;
            p[0] = b;
            p[1] = g;
            p[2] = r;
            p[3] = 255;
        }
    }
    // Harness stamp: the race time this frame shows, little-endian int32 in the blue
    // channel of the first four pixels of the top row, so tests can pair FRAME and STATE.
    const auto stamp = static_cast<uint32_t>(raceTime_);
    for (int i = 0; i < 4 && i < width; ++i) out[static_cast<size_t>(i) * 4] = static_cast<uint8_t>(stamp >> (8 * i));
}

}  // namespace harness
