// tmstate: a TMInterface 2 plugin that streams TrackMania Nations Forever's true game state
// to the tmstate Python package over TCP and applies the actions it sends back.
//
// Wire protocol: docs/protocol.md (version 3). Every TMInterface symbol this file uses is
// listed, with its signature and source, in plugins/API.md. plugins/harness runs this file
// unmodified (a stand-in host, NOT the game) for the tests.
//
// Install: copy this file into Documents/TMInterface/Plugins inside the game's prefix and
// launch the game with /configstring="set tmstate_listen 127.0.0.1:8477" (the default).

const uint PROTOCOL_VERSION = 3;
const uint TOKEN_SIZE = 32;             // HELLO's auth token field (ASCII, zero-filled)
const string PLUGIN_VERSION = "tmstate 0.1.0";
const uint MAX_PAYLOAD = 67108864;      // 64 MiB
const uint STATE_RECORD_SIZE = 112;
const uint MIN_STATE_BLOB = 8356;       // bytes in a SimulationState (tminterface SimStateData.min_size)
const uint BLOB_NUM_RESPAWNS = 8340;    // offset of num_respawns in that blob (tminterface SimStateData)
const int FULL = 65536;                 // full analog deflection
// TMNF has no analog acceleration: TMInterface's analog Gas accelerates at <= -19661 and
// brakes at >= 19661 (plugins/API.md, "Inputs"). The plugin drives the pedals through the
// binary Up/Down inputs (as Linesight does) and treats an ACTION gas >= 19661 as "accelerate",
// the same cut the game applies to analog gas.
const int GAS_ON = 19661;
const int STEER_KEY_AT = 32768;         // binary steering: |steer| >= half presses Left/Right
const float MAX_SPEED = 100.0f;         // SetInputState docs: above ~100x inputs may be dropped
const int DEFAULT_PORT = 8477;

// Client -> plugin messages.
const uint MSG_HELLO = 1;
const uint MSG_ACTION = 2;
const uint MSG_SET_ACTION_PERIOD = 3;
const uint MSG_SET_SPEED = 4;
const uint MSG_SAVE_STATE = 5;
const uint MSG_REWIND = 6;
const uint MSG_RESPAWN = 7;
const uint MSG_RESTART = 8;
const uint MSG_PREVENT_FINISH = 9;
const uint MSG_REQUEST_FRAME = 10;
const uint MSG_EXECUTE_COMMAND = 11;
const uint MSG_SET_TIMEOUT = 12;
const uint MSG_SET_MODE = 13;
const uint MSG_SET_AUTO_FRAME = 14;
const uint MSG_BYE = 15;
const uint MSG_SET_STEER_MODE = 16;
const uint MSG_GET_MAP = 17;

// Plugin -> client messages.
const uint MSG_PLUGIN_HELLO = 64;
const uint MSG_STATE = 65;
const uint MSG_SAVED_STATE = 66;
const uint MSG_FRAME = 67;
const uint MSG_OK = 68;
const uint MSG_ERROR = 69;
const uint MSG_MAP = 70;

// ERROR codes.
const uint ERR_VERSION = 1;
const uint ERR_UNKNOWN_TYPE = 2;
const uint ERR_BAD_PAYLOAD = 3;
const uint ERR_NOT_IN_RACE = 4;
const uint ERR_REWIND = 5;
const uint ERR_FRAME = 6;
const uint ERR_AUTH = 7;

// STATE flags.
const uint FLAG_FINISHED = 1;
const uint FLAG_IN_RACE = 2;
const uint FLAG_OBSERVED = 4;
const uint FLAG_AFTER_REWIND = 8;

// Where a command is handled, and what handling it means for the wait around it.
const int AT_RUN_STEP = 0;      // waiting in OnRunStep after a STATE
const int AT_RENDER_WAIT = 1;   // waiting in Render after a FRAME (the game is paused)
const int AT_IDLE = 2;          // in Render, not waiting
const int KEEP_WAITING = 0;
const int END_WAIT = 1;
const int LEAVE_FOR_FRAME = 2;  // pause, return from OnRunStep, capture in Render, wait there
const int RESTART_TIMER = 3;
const int DROPPED = 4;

// Connection.
Net::Socket@ gListener = null;
string gToken = "";  // this instance's auth token ("" = none: any local client), read once at listen time
Net::Socket@ gClient = null;
bool gHandshaken = false;
uint64 gConnectedAt = 0;
uint64 gLastNewcomerCheck = 0;
const uint NEWCOMER_CHECK_MS = 200;  // how often a wait looks for a client replacing ours
bool gHaveHeader = false;
uint gMsgType = 0;
uint gMsgLength = 0;

// Settings of the current client (reset for every connection).
int gPeriodMs = 50;
uint gTimeoutMs = 2000;
bool gObserve = false;
uint gAutoFrameW = 0;
uint gAutoFrameH = 0;
bool gPreventFinish = false;
float gSpeed = 1.0f;
bool gSteerBinary = false;  // SET_STEER_MODE 1: steer through the Left/Right keys
uint gSeq = 0;

// Waiting, frames and requests deferred to the next OnRunStep.
bool gWaitInRender = false;
uint64 gWaitStart = 0;
bool gFramePending = false;
uint gFrameW = 0;
uint gFrameH = 0;
uint gFrameRequest = 0;
array<uint8>@ gPendingRewind = null;
bool gPendingRespawn = false;
bool gPendingRestart = false;
array<string> gPendingCommands;

// Race bookkeeping.
bool gFinishSent = false;
// Latched in OnCheckpointCountChanged when the race finishes: PreventSimulationFinish may
// undo RaceFinished before the next OnRunStep, and TMInterface may call the two callbacks
// in either order within a tick (plugins/API.md, "Finish").
bool gFinishLatched = false;
int gCheckpointTarget = 0;  // OnCheckpointCountChanged's target in this race (0: not called yet)
bool gAfterRewind = false;
int gRespawns = 0;

// Send buffers, reused: the STATE message goes out in one Write.
array<uint8> gState(8 + STATE_RECORD_SIZE);
array<uint8> gOut(16);

PluginInfo@ GetPluginInfo()
{
    PluginInfo info;
    info.Author = "tmstate developers";
    info.Name = "tmstate";
    info.Description = "Streams the true game state to the tmstate RL environment over TCP (docs/protocol.md)";
    info.Version = "0.1.0";
    return info;
}

void Main()
{
    RegisterVariable("tmstate_listen", "");
    RegisterVariable("tmstate_port", DEFAULT_PORT);
    RegisterVariable("tmstate_bind", "");
    RegisterVariable("tmstate_token", "");
    // TMInterface saves variables in builtin.txt and RegisterVariable brings back the value
    // of the last session: reset them, so only this launch's configstring sets them.
    SetVariable("tmstate_listen", "");
    SetVariable("tmstate_port", double(DEFAULT_PORT));
    SetVariable("tmstate_bind", "");
    SetVariable("tmstate_token", "");  // set by the launcher's script file (configstring), read once, then cleared
    // The launch configstring ("set tmstate_listen 127.0.0.1:8477") is applied after Main():
    // read it from a command queued now, which TMInterface runs after the configstring.
    // (The command is not named like a variable: the console has one namespace for both.)
    RegisterCustomCommand("tmstate_start", "tmstate: start listening (runs after the launch configstring)", OnListenCommand);
    CommandList list;
    list.Content = "tmstate_start";
    list.Process();
}

void OnDisabled()
{
    Drop("the plugin is disabled");
    @gListener = null;
}

void OnListenCommand(int fromTime, int toTime, const string&in commandLine, const array<string>&in args)
{
    StartListening();
}

// Where to listen: "tmstate_listen" = "ADDRESS:PORT" when set (one command sets both; the
// launcher always uses it), else tmstate_port and tmstate_bind (default 8477 on 127.0.0.1).
// The log line says where each value came from.
void StartListening()
{
    if (gListener !is null) {
        return;
    }
    string host = "127.0.0.1";
    double port = DEFAULT_PORT;
    string from;
    string listen = GetVariableString("tmstate_listen");
    if (listen != "") {
        array<string>@ parts = listen.Split(":");
        if (parts.Length != 2 || parts[0] == "" || parts[1] == "") {
            log("tmstate: tmstate_listen must be ADDRESS:PORT (e.g. 127.0.0.1:8477), got '" + listen + "'; not listening");
            return;
        }
        host = parts[0];
        port = ParsePort(parts[1]);
        from = "address and port from tmstate_listen";
    } else {
        port = GetVariableDouble("tmstate_port");
        string bind = GetVariableString("tmstate_bind");
        if (bind != "") {
            host = bind;
        }
        from = "port: " + (int(port) == DEFAULT_PORT ? "default or tmstate_port " + DEFAULT_PORT : "tmstate_port")
             + ", address: " + (bind == "" ? "default, tmstate_bind not set" : "tmstate_bind");
    }
    if (port < 0 || port > 65535 || double(int(port)) != port) {
        log("tmstate: the port must be a whole number 0..65535, got " + port + " (" + from + "); not listening");
        return;
    }
    // The token leaves the variable at once: it is never saved to builtin.txt nor shown by `vars`.
    gToken = GetVariableString("tmstate_token");
    SetVariable("tmstate_token", "");
    if (gToken.Length > TOKEN_SIZE) {
        log("tmstate: tmstate_token is longer than " + TOKEN_SIZE + " characters; not listening");
        gToken = "";
        return;
    }
    Net::Socket@ listener = Net::Socket();
    if (!listener.Listen(host, uint16(port))) {
        log("tmstate: cannot listen on " + host + ":" + int(port) + " (" + from + "; port in use?)");
        return;
    }
    @gListener = listener;
    log("tmstate: " + PLUGIN_VERSION + " listening on " + host + ":" + int(port) + " (" + from
        + "; values kept in builtin.txt are reset at start; "
        + (gToken.Length > 0 ? "clients need this instance's token)" : "no token: any local client may connect)"));
}

// A port number from text ("8477"), or -1 when it is not a whole number.
double ParsePort(const string&in text)
{
    double value = 0;
    for (uint i = 0; i < text.Length; i++) {
        uint8 c = text[i];
        if (c < 48 || c > 57 || i >= 5) {
            return -1;
        }
        value = value * 10 + double(c - 48);
    }
    return value;
}

// ---------------------------------------------------------------- callbacks

void Render()
{
    if (gListener is null) {
        return;
    }
    RunPendingCommands();
    if (gClient is null) {
        AcceptClient();
        if (gClient is null) {
            return;
        }
    }
    if (!gHandshaken) {
        Handshake();
        return;
    }
    if (gObserve && TakeOverByNewcomer()) {
        return;  // an observe-mode client never waits for us, so a newcomer is looked for here
    }
    SimulationManager@ sim = GetSimulationManager();
    if (gFramePending) {
        gFramePending = false;
        SendFrame(gFrameW, gFrameH, gFrameRequest);
    }
    if (gWaitInRender) {
        WaitInRender(sim);
        return;
    }
    while (gClient !is null && PollMessage()) {
        Handle(sim, AT_IDLE);
    }
}

void OnRunStep(SimulationManager@ sim)
{
    int t = sim.RaceTime;
    if (t < 0) {
        gRespawns = 0;  // a new race is counting down
        gFinishLatched = false;
        gCheckpointTarget = 0;
    }
    if (gClient is null || !gHandshaken) {
        return;
    }
    if (gPendingRestart) {
        gPendingRestart = false;
        sim.GiveUp();
        ResetRace();
        return;
    }
    if (gPendingRespawn) {
        gPendingRespawn = false;
        sim.Respawn();
        gRespawns++;
        gFinishLatched = false;
        return;
    }
    if (gPendingRewind !is null) {
        array<uint8>@ blob = gPendingRewind;
        @gPendingRewind = null;
        ApplyRewind(sim, blob);
        SendStateAndWait(sim);
        return;
    }
    bool finished = Finished(sim);
    if (!finished) {
        gFinishSent = false;
    }
    // Sync ticks: race time a multiple of the period, and once the tick the race finishes.
    // After the finish STATE no STATE follows until a REWIND, RESTART or a new race.
    bool sync = finished ? !gFinishSent : (t >= 0 && t % gPeriodMs == 0);
    if (sync) {
        SendStateAndWait(sim);
    }
}

void OnCheckpointCountChanged(SimulationManager@ sim, int current, int target)
{
    gCheckpointTarget = target;
    if (!sim.PlayerInfo.RaceFinished) {
        return;
    }
    gFinishLatched = true;
    if (gClient !is null && gPreventFinish) {
        sim.PreventSimulationFinish();
    }
}

// The race is finished: the game says so, or this race's finish was latched (and perhaps
// undone by PreventSimulationFinish) in OnCheckpointCountChanged.
bool Finished(SimulationManager@ sim)
{
    return gFinishLatched || sim.PlayerInfo.RaceFinished;
}

// ---------------------------------------------------------------- connection

void AcceptClient()
{
    Net::Socket@ client = gListener.Accept(0);
    if (client !is null) {
        Adopt(client);
    }
}

void Adopt(Net::Socket@ client)
{
    client.NoDelay = true;
    ResetConnection();
    @gClient = client;
    gConnectedAt = Time::Now;
    log("tmstate: client connected from " + client.RemoteIP);
}

// While we wait for our client, a new connection means that client is gone: TMInterface's
// socket reports a vanished peer only when a Write fails, so without this a restarted
// trainer would wait out the whole timeout. The newcomer replaces the old client (whose
// inputs are released first). Checked every NEWCOMER_CHECK_MS, off the fast path.
bool TakeOverByNewcomer()
{
    uint64 now = Time::Now;
    if (now - gLastNewcomerCheck < NEWCOMER_CHECK_MS) {
        return false;
    }
    gLastNewcomerCheck = now;
    Net::Socket@ newcomer = gListener.Accept(0);
    if (newcomer is null) {
        return false;
    }
    Drop("a new client connected");
    Adopt(newcomer);
    return true;
}

void ResetConnection()
{
    gHandshaken = false;
    gHaveHeader = false;
    gPeriodMs = 50;
    gTimeoutMs = 2000;
    gObserve = false;
    gAutoFrameW = 0;
    gAutoFrameH = 0;
    gPreventFinish = false;
    gSpeed = 1.0f;
    gSteerBinary = false;
    gSeq = 0;
    gWaitInRender = false;
    gFramePending = false;
    @gPendingRewind = null;
    gPendingRespawn = false;
    gPendingRestart = false;
    gAfterRewind = false;
}

void ResetRace()
{
    gFinishSent = false;
    gFinishLatched = false;
    gAfterRewind = false;
    gRespawns = 0;
}

// Drops the client: inputs released, game speed back to 1, listening for the next one.
void Drop(const string&in reason)
{
    if (gClient is null) {
        return;
    }
    log("tmstate: client dropped: " + reason);
    @gClient = null;
    SimulationManager@ sim = GetSimulationManager();
    ReleaseInputs(sim);
    sim.SetSpeed(1.0f);
    ResetConnection();
}

void ReleaseInputs(SimulationManager@ sim)
{
    if (sim.InRace) {
        sim.SetInputState(InputType::Steer, 0);
        sim.SetInputState(InputType::Gas, 0);
        sim.SetInputState(InputType::Left, 0);
        sim.SetInputState(InputType::Right, 0);
        sim.SetInputState(InputType::Up, 0);
        sim.SetInputState(InputType::Down, 0);
    }
}

void Handshake()
{
    if (!PollMessage()) {
        if (gClient !is null && Time::Now - gConnectedAt > gTimeoutMs) {
            Drop("no HELLO within " + gTimeoutMs + " ms");
        }
        return;
    }
    if (gMsgType != MSG_HELLO || gMsgLength < 4) {
        Skip(gMsgLength);
        SendError(ERR_BAD_PAYLOAD, gMsgType, "expected HELLO (type 1, uint32 version + name) first, got type "
                  + gMsgType + " with " + gMsgLength + " bytes");
        Drop("no HELLO first");
        return;
    }
    uint version = gClient.ReadUint32();
    if (version != PROTOCOL_VERSION) {
        Skip(gMsgLength - 4);
        SendError(ERR_VERSION, MSG_HELLO, "protocol version mismatch: the client speaks version " + version
                  + ", the plugin (" + PLUGIN_VERSION + ") speaks version " + PROTOCOL_VERSION);
        Drop("protocol version mismatch");
        return;
    }
    if (gMsgLength < 4 + TOKEN_SIZE) {
        Skip(gMsgLength - 4);
        SendError(ERR_BAD_PAYLOAD, MSG_HELLO, "HELLO takes uint32 version, a " + TOKEN_SIZE
                  + "-byte token and a name, got " + gMsgLength + " bytes");
        Drop("short HELLO");
        return;
    }
    array<uint8>@ token = gClient.ReadBytes(TOKEN_SIZE);
    string name = ReadText(gMsgLength - 4 - TOKEN_SIZE);
    if (!TokenMatches(token)) {
        SendError(ERR_AUTH, MSG_HELLO, "this game instance only accepts the client holding its token "
                  + "(generated by tmstate launch); the HELLO's token is missing or wrong");
        Drop("refused a client without this instance's token");
        return;
    }
    gOut.Resize(12);
    PutU32(gOut, 0, MSG_PLUGIN_HELLO);
    PutU32(gOut, 4, 4 + PLUGIN_VERSION.Length);
    PutU32(gOut, 8, PROTOCOL_VERSION);
    if (SendBytes(gOut) && SendText(PLUGIN_VERSION)) {
        gHandshaken = true;
        log("tmstate: handshake with '" + name + "' done");
    }
}

// Compares HELLO's token with ours in constant time (all TOKEN_SIZE bytes, whatever differs);
// with no token configured every client is accepted, as before tokens existed.
bool TokenMatches(array<uint8>@ got)
{
    if (gToken.Length == 0) {
        return true;
    }
    uint diff = 0;
    for (uint i = 0; i < TOKEN_SIZE; i++) {
        uint want = i < gToken.Length ? uint(gToken[i]) : 0;
        diff |= want ^ uint(got[i]);
    }
    return diff == 0;
}

// True when a whole message is buffered; gMsgType and gMsgLength then describe it and its
// payload is next on the socket.
bool PollMessage()
{
    if (gClient is null) {
        return false;
    }
    if (!gHaveHeader) {
        if (gClient.Available < 8) {
            return false;
        }
        gMsgType = gClient.ReadUint32();
        gMsgLength = gClient.ReadUint32();
        if (gMsgLength > MAX_PAYLOAD) {
            Drop("message type " + gMsgType + " announces " + gMsgLength + " bytes (more than 64 MiB)");
            return false;
        }
        gHaveHeader = true;
    }
    if (gClient.Available < gMsgLength) {
        return false;
    }
    gHaveHeader = false;
    return true;
}

void Skip(uint length)
{
    if (length > 0 && gClient !is null) {
        gClient.ReadBytes(length);
    }
}

string ReadText(uint length)
{
    if (length == 0) {
        return "";
    }
    return gClient.ReadString(length);
}

bool SendBytes(array<uint8>@ bytes)
{
    if (gClient is null) {
        return false;
    }
    if (!gClient.Write(bytes)) {
        Drop("the client went away (write failed)");
        return false;
    }
    return true;
}

bool SendText(const string&in text)
{
    if (text.Length == 0) {
        return true;
    }
    if (gClient is null) {
        return false;
    }
    if (!gClient.Write(text)) {
        Drop("the client went away (write failed)");
        return false;
    }
    return true;
}

void SendOk(uint request)
{
    gOut.Resize(12);
    PutU32(gOut, 0, MSG_OK);
    PutU32(gOut, 4, 4);
    PutU32(gOut, 8, request);
    SendBytes(gOut);
}

void SendError(uint code, uint request, const string&in text)
{
    gOut.Resize(16);
    PutU32(gOut, 0, MSG_ERROR);
    PutU32(gOut, 4, 8 + text.Length);
    PutU32(gOut, 8, code);
    PutU32(gOut, 12, request);
    if (SendBytes(gOut)) {
        SendText(text);
    }
}

// Checks a fixed payload size; a wrong one is skipped and answered with ERROR 3.
bool Expect(uint length)
{
    if (gMsgLength == length) {
        return true;
    }
    uint type = gMsgType;
    uint got = gMsgLength;
    Skip(got);
    SendError(ERR_BAD_PAYLOAD, type, "message type " + type + " takes " + length + " payload bytes, got " + got);
    return false;
}

// ---------------------------------------------------------------- waiting

void SendStateAndWait(SimulationManager@ sim)
{
    if (!SendState(sim) || gObserve) {
        return;
    }
    if (gAutoFrameW > 0) {
        RequestFrame(sim, gAutoFrameW, gAutoFrameH, 0);
        return;
    }
    WaitInRunStep(sim);
}

void WaitInRunStep(SimulationManager@ sim)
{
    uint64 start = Time::Now;
    while (gClient !is null) {
        if (PollMessage()) {
            int outcome = Handle(sim, AT_RUN_STEP);
            if (outcome == END_WAIT || outcome == DROPPED || outcome == LEAVE_FOR_FRAME) {
                return;
            }
            if (outcome == RESTART_TIMER) {
                start = Time::Now;
            }
        } else if (gClient !is null && Time::Now - start > gTimeoutMs) {
            Drop("no answer within " + gTimeoutMs + " ms");
            return;
        } else if (TakeOverByNewcomer()) {
            return;
        }
    }
}

void WaitInRender(SimulationManager@ sim)
{
    while (gClient !is null && gWaitInRender) {
        if (PollMessage()) {
            if (Handle(sim, AT_RENDER_WAIT) == RESTART_TIMER) {
                gWaitStart = Time::Now;
            }
        } else if (gClient !is null && Time::Now - gWaitStart > gTimeoutMs) {
            Drop("no answer within " + gTimeoutMs + " ms");
            return;
        } else if (TakeOverByNewcomer()) {
            return;
        }
    }
}

// A frame needed while waiting in OnRunStep: pause, capture in the next Render(), wait there.
// At game speed N the game runs several ticks per rendered frame and SetSpeed(0) takes
// effect only after them; rewinding to the current state ends them now (Linesight calls
// RewindToState(SaveState()) before every frame request), so the FRAME shows this STATE
// and no other sync tick runs before the ACTION (plugins/API.md, "Pausing").
void RequestFrame(SimulationManager@ sim, uint width, uint height, uint request)
{
    gFramePending = true;
    gFrameW = width;
    gFrameH = height;
    gFrameRequest = request;
    gWaitInRender = true;
    gWaitStart = Time::Now;
    sim.SetSpeed(0.0f);
    sim.RewindToState(sim.SaveState());
}

// Ends a wait in Render(): the game runs on at the client's speed.
void Resume(SimulationManager@ sim)
{
    gWaitInRender = false;
    sim.SetSpeed(gSpeed);
}

bool ValidFrameSize(uint width, uint height)
{
    if (width == 0 && height == 0) {
        return true;
    }
    return width >= 1 && height >= 1 && uint64(width) * uint64(height) * 4 + 8 <= uint64(MAX_PAYLOAD);
}

void SendFrame(uint width, uint height, uint request)
{
    vec2 size(float(width), float(height));
    array<uint8>@ pixels = Graphics::CaptureScreenshot(size);
    uint w = uint(size.x + 0.5f);
    uint h = uint(size.y + 0.5f);
    if (pixels is null || w == 0 || h == 0 || pixels.Length != w * h * 4) {
        SendError(ERR_FRAME, request, "frame capture failed (asked " + width + "x" + height + ")");
        return;
    }
    gOut.Resize(16);
    PutU32(gOut, 0, MSG_FRAME);
    PutU32(gOut, 4, 8 + pixels.Length);
    PutU32(gOut, 8, w);
    PutU32(gOut, 12, h);
    if (SendBytes(gOut)) {
        SendBytes(pixels);
    }
}

void RunPendingCommands()
{
    for (uint i = 0; i < gPendingCommands.Length; i++) {
        ExecuteCommand(gPendingCommands[i]);
    }
    gPendingCommands.Resize(0);
}

// ---------------------------------------------------------------- commands

int Handle(SimulationManager@ sim, int where)
{
    uint type = gMsgType;
    if (type == MSG_ACTION) {
        return OnAction(sim, where);
    } else if (type == MSG_SET_ACTION_PERIOD) {
        if (!Expect(4)) return KEEP_WAITING;
        uint period = gClient.ReadUint32();
        if (period < 10 || period > 100000 || period % 10 != 0) {
            SendError(ERR_BAD_PAYLOAD, type, "the action period must be a multiple of 10 in 10..100000 ms, got " + period);
            return KEEP_WAITING;
        }
        gPeriodMs = int(period);
        SendOk(type);
    } else if (type == MSG_SET_SPEED) {
        if (!Expect(4)) return KEEP_WAITING;
        float speed = gClient.ReadFloat();
        if (!(speed > 0.0f) || speed > MAX_SPEED) {
            SendError(ERR_BAD_PAYLOAD, type, "the game speed must be > 0 and <= 100 (1 = real time; above 100"
                      + " TMInterface may drop inputs), got " + speed);
            return KEEP_WAITING;
        }
        gSpeed = speed;
        if (!gWaitInRender) {
            sim.SetSpeed(gSpeed);
        }
        SendOk(type);
    } else if (type == MSG_SAVE_STATE) {
        if (!Expect(0)) return KEEP_WAITING;
        OnSaveState(sim);
    } else if (type == MSG_REWIND) {
        return OnRewind(sim, where);
    } else if (type == MSG_RESPAWN || type == MSG_RESTART) {
        return OnRespawnOrRestart(sim, where, type);
    } else if (type == MSG_PREVENT_FINISH) {
        if (!Expect(4)) return KEEP_WAITING;
        uint on = gClient.ReadUint32();
        if (on > 1) {
            SendError(ERR_BAD_PAYLOAD, type, "PREVENT_FINISH takes 0 or 1, got " + on);
            return KEEP_WAITING;
        }
        gPreventFinish = on == 1;
        SendOk(type);
    } else if (type == MSG_REQUEST_FRAME) {
        if (!Expect(8)) return KEEP_WAITING;
        uint width = gClient.ReadUint32();
        uint height = gClient.ReadUint32();
        if (!ValidFrameSize(width, height)) {
            SendError(ERR_BAD_PAYLOAD, type, "bad frame size " + width + "x" + height + " (0x0 = window size)");
            return KEEP_WAITING;
        }
        if (where == AT_RUN_STEP) {
            RequestFrame(sim, width, height, type);
            return LEAVE_FOR_FRAME;
        }
        SendFrame(width, height, type);
    } else if (type == MSG_EXECUTE_COMMAND) {
        string command = ReadText(gMsgLength);
        if (where == AT_RUN_STEP) {
            gPendingCommands.Add(command);  // console commands run from Render(), not inside a tick
        } else {
            ExecuteCommand(command);
        }
        SendOk(type);
    } else if (type == MSG_SET_TIMEOUT) {
        if (!Expect(4)) return KEEP_WAITING;
        uint timeout = gClient.ReadUint32();
        if (timeout < 100) {
            SendError(ERR_BAD_PAYLOAD, type, "the timeout must be >= 100 ms, got " + timeout);
            return KEEP_WAITING;
        }
        gTimeoutMs = timeout;
        SendOk(type);
    } else if (type == MSG_SET_MODE) {
        return OnSetMode(sim, where);
    } else if (type == MSG_SET_AUTO_FRAME) {
        if (!Expect(8)) return KEEP_WAITING;
        uint width = gClient.ReadUint32();
        uint height = gClient.ReadUint32();
        if (!ValidFrameSize(width, height)) {
            SendError(ERR_BAD_PAYLOAD, type, "bad frame size " + width + "x" + height + " (0x0 = off)");
            return KEEP_WAITING;
        }
        gAutoFrameW = width;
        gAutoFrameH = height;
        SendOk(type);
    } else if (type == MSG_SET_STEER_MODE) {
        if (!Expect(4)) return KEEP_WAITING;
        uint mode = gClient.ReadUint32();
        if (mode > 1) {
            SendError(ERR_BAD_PAYLOAD, type, "SET_STEER_MODE takes 0 (analog Steer) or 1 (Left/Right keys), got " + mode);
            return KEEP_WAITING;
        }
        gSteerBinary = mode == 1;
        SendOk(type);
    } else if (type == MSG_GET_MAP) {
        if (!Expect(0)) return KEEP_WAITING;
        SendMap();
    } else if (type == MSG_BYE) {
        Skip(gMsgLength);
        Drop("BYE");
        return DROPPED;
    } else if (type == MSG_HELLO) {
        Skip(gMsgLength);
        SendError(ERR_BAD_PAYLOAD, type, "HELLO after the handshake");
    } else {
        Skip(gMsgLength);
        SendError(ERR_UNKNOWN_TYPE, type, "unknown message type " + type + " (docs/protocol.md lists 1..17)");
    }
    return gClient is null ? DROPPED : KEEP_WAITING;
}

int OnAction(SimulationManager@ sim, int where)
{
    if (!Expect(12)) return KEEP_WAITING;
    int steer = gClient.ReadInt32();
    int gas = gClient.ReadInt32();
    uint buttons = gClient.ReadUint32();
    if (steer < -FULL || steer > FULL || gas < 0 || gas > FULL || buttons > 3) {
        SendError(ERR_BAD_PAYLOAD, MSG_ACTION, "ACTION takes steer -65536..65536, gas 0..65536, buttons 0..3; got "
                  + steer + ", " + gas + ", " + buttons);
        return KEEP_WAITING;
    }
    if (gObserve) {
        SendError(ERR_BAD_PAYLOAD, MSG_ACTION, "ACTION in observe mode (send SET_MODE 0 first)");
        return KEEP_WAITING;
    }
    if (sim.InRace) {
        ApplyInputs(sim, steer, gas >= GAS_ON || (buttons & 1) != 0, (buttons & 2) != 0);
    }
    if (where == AT_RENDER_WAIT) {
        Resume(sim);
        return END_WAIT;
    }
    return where == AT_RUN_STEP ? END_WAIT : KEEP_WAITING;
}

// The inputs as TMNF takes them: pedals through Up/Down (never the analog Gas, whose sign
// is brake-positive and which TMNF reads as on/off anyway); steering through the analog
// Steer (default) or, in binary mode, the Left/Right keys at full deflection.
void ApplyInputs(SimulationManager@ sim, int steer, bool accelerate, bool brake)
{
    if (gSteerBinary) {
        sim.SetInputState(InputType::Steer, 0);
        sim.SetInputState(InputType::Left, steer <= -STEER_KEY_AT ? 1 : 0);
        sim.SetInputState(InputType::Right, steer >= STEER_KEY_AT ? 1 : 0);
    } else {
        sim.SetInputState(InputType::Steer, steer);
    }
    sim.SetInputState(InputType::Up, accelerate ? 1 : 0);
    sim.SetInputState(InputType::Down, brake ? 1 : 0);
}

// MAP: uint32 uid length, the uid, then the map name (both empty when no map is loaded).
void SendMap()
{
    string uid = "";
    string name = "";
    TM::GameCtnChallenge@ challenge = GetCurrentChallenge();
    if (challenge !is null) {
        uid = challenge.Uid;
        name = challenge.Name;
    }
    gOut.Resize(12);
    PutU32(gOut, 0, MSG_MAP);
    PutU32(gOut, 4, 4 + uid.Length + name.Length);
    PutU32(gOut, 8, uid.Length);
    if (SendBytes(gOut) && SendText(uid)) {
        SendText(name);
    }
}

void OnSaveState(SimulationManager@ sim)
{
    if (!sim.InRace) {
        SendError(ERR_NOT_IN_RACE, MSG_SAVE_STATE, "SAVE_STATE outside a race");
        return;
    }
    SimulationState@ state = sim.SaveState();
    array<uint8>@ blob = state.ToArray();
    gOut.Resize(12);
    PutU32(gOut, 0, MSG_SAVED_STATE);
    PutU32(gOut, 4, 4 + blob.Length);
    PutU32(gOut, 8, uint(sim.RaceTime));
    if (SendBytes(gOut)) {
        SendBytes(blob);
    }
}

int OnRewind(SimulationManager@ sim, int where)
{
    array<uint8>@ blob = null;
    if (gMsgLength > 0) {
        @blob = gClient.ReadBytes(gMsgLength);
    }
    if (!sim.InRace || sim.RaceTime < 0) {
        SendError(ERR_NOT_IN_RACE, MSG_REWIND, "REWIND outside a race (race time " + sim.RaceTime + ")");
        return KEEP_WAITING;
    }
    if (blob is null || blob.Length < MIN_STATE_BLOB) {
        SendError(ERR_REWIND, MSG_REWIND, "REWIND takes a SAVED_STATE blob of at least " + MIN_STATE_BLOB
                  + " bytes, got " + gMsgLength);
        return KEEP_WAITING;
    }
    if (where != AT_RUN_STEP) {
        @gPendingRewind = blob;  // applied at the start of the next OnRunStep
        if (where == AT_RENDER_WAIT) {
            Resume(sim);
            return END_WAIT;
        }
        return KEEP_WAITING;
    }
    ApplyRewind(sim, blob);
    if (!SendState(sim)) {
        return DROPPED;
    }
    if (gAutoFrameW > 0) {
        RequestFrame(sim, gAutoFrameW, gAutoFrameH, 0);
        return LEAVE_FOR_FRAME;
    }
    return RESTART_TIMER;
}

void ApplyRewind(SimulationManager@ sim, array<uint8>@ blob)
{
    SimulationState state(blob);
    sim.RewindToState(state);
    gRespawns = int(GetU32(blob, BLOB_NUM_RESPAWNS));
    gFinishSent = false;
    gFinishLatched = false;
    gAfterRewind = true;
}

int OnRespawnOrRestart(SimulationManager@ sim, int where, uint type)
{
    if (!Expect(0)) return KEEP_WAITING;
    if (!sim.InRace || (type == MSG_RESPAWN && sim.RaceTime < 0)) {
        SendError(ERR_NOT_IN_RACE, type, (type == MSG_RESPAWN ? "RESPAWN" : "RESTART") + " outside a race");
        return KEEP_WAITING;
    }
    if (where == AT_RUN_STEP) {
        if (type == MSG_RESPAWN) {
            sim.Respawn();
            gRespawns++;
            gFinishLatched = false;
        } else {
            sim.GiveUp();
            ResetRace();
        }
        SendOk(type);
        return END_WAIT;
    }
    if (type == MSG_RESPAWN) {
        gPendingRespawn = true;
    } else {
        gPendingRestart = true;
    }
    SendOk(type);
    if (where == AT_RENDER_WAIT) {
        Resume(sim);
        return END_WAIT;
    }
    return KEEP_WAITING;
}

int OnSetMode(SimulationManager@ sim, int where)
{
    if (!Expect(4)) return KEEP_WAITING;
    uint mode = gClient.ReadUint32();
    if (mode > 1) {
        SendError(ERR_BAD_PAYLOAD, MSG_SET_MODE, "SET_MODE takes 0 (control) or 1 (observe), got " + mode);
        return KEEP_WAITING;
    }
    bool observe = mode == 1;
    if (observe && !gObserve) {
        ReleaseInputs(sim);  // once: from now on the person at the keyboard drives
    }
    gObserve = observe;
    SendOk(MSG_SET_MODE);
    if (observe && where == AT_RENDER_WAIT) {
        Resume(sim);
        return END_WAIT;
    }
    return observe && where == AT_RUN_STEP ? END_WAIT : KEEP_WAITING;
}

// ---------------------------------------------------------------- the STATE record

bool SendState(SimulationManager@ sim)
{
    gSeq++;
    int t = sim.RaceTime;
    TM::PlayerInfo@ info = sim.PlayerInfo;
    bool finished = Finished(sim);
    uint flags = 0;
    if (finished) flags |= FLAG_FINISHED;
    if (sim.InRace && t >= 0) flags |= FLAG_IN_RACE;
    if (gObserve) flags |= FLAG_OBSERVED;
    if (gAfterRewind) flags |= FLAG_AFTER_REWIND;
    gAfterRewind = false;
    if (finished) {
        gFinishSent = true;
    }

    TM::HmsStateDyna@ dyna = sim.Dyna.CurrentState;
    iso4 location = dyna.Location;
    vec3 velocity = dyna.LinearSpeed;
    vec3 angular = dyna.AngularSpeed;
    float yaw = 0.0f;
    float pitch = 0.0f;
    float roll = 0.0f;
    location.Rotation.GetYawPitchRoll(yaw, pitch, roll);

    int gear = 0;
    double rpm = 0.0;
    TM::SceneVehicleCar@ car = sim.SceneVehicleCar;
    if (car !is null) {
        gear = int(car.CarEngine.Gear);
        rpm = double(car.CarEngine.ActualRPM);
    }

    // The inputs in force, as the car takes them (docs/protocol.md): a held Left/Right key
    // is full steer, else the analog Steer; gas and brake are on (65536) or off (0), from
    // Up/Down or an analog Gas past TMNF's thresholds (negative accelerates).
    InputState inputs = sim.GetInputState();
    int steer = int(inputs.Steer);
    if (inputs.Left && !inputs.Right) {
        steer = -FULL;
    } else if (inputs.Right && !inputs.Left) {
        steer = FULL;
    }
    int gas = (inputs.Up || int(inputs.Gas) <= -GAS_ON) ? FULL : 0;
    int brake = (inputs.Down || int(inputs.Gas) >= GAS_ON) ? FULL : 0;

    PutU32(gState, 0, MSG_STATE);
    PutU32(gState, 4, STATE_RECORD_SIZE);
    PutU32(gState, 8, gSeq);
    PutI32(gState, 12, t);
    PutU32(gState, 16, flags);
    PutI32(gState, 20, Fixed(location.Position.x, 1000.0));
    PutI32(gState, 24, Fixed(location.Position.y, 1000.0));
    PutI32(gState, 28, Fixed(location.Position.z, 1000.0));
    PutI32(gState, 32, Fixed(velocity.x, 1000.0));
    PutI32(gState, 36, Fixed(velocity.y, 1000.0));
    PutI32(gState, 40, Fixed(velocity.z, 1000.0));
    PutI32(gState, 44, int(info.DisplaySpeed));
    PutI32(gState, 48, Fixed(yaw, 1000000.0));
    PutI32(gState, 52, Fixed(pitch, 1000000.0));
    PutI32(gState, 56, Fixed(roll, 1000000.0));
    PutI32(gState, 60, Fixed(angular.x, 1000000.0));
    PutI32(gState, 64, Fixed(angular.y, 1000000.0));
    PutI32(gState, 68, Fixed(angular.z, 1000000.0));
    PutI32(gState, 72, int(info.CurCheckpointCount));
    PutI32(gState, 76, CheckpointTarget(info));
    PutI32(gState, 80, int(info.CurLap));
    PutI32(gState, 84, gRespawns);
    PutI32(gState, 88, gear);
    PutI32(gState, 92, Fixed(rpm, 1000.0));
    PutI32(gState, 96, steer);
    PutI32(gState, 100, gas);
    PutI32(gState, 104, brake);

    SimulationWheels@ wheels = sim.Wheels;
    if (wheels !is null) {
        gState[108] = wheels.FrontLeft.RTState.HasGroundContact ? 1 : 0;
        gState[109] = wheels.FrontRight.RTState.HasGroundContact ? 1 : 0;
        gState[110] = wheels.BackRight.RTState.HasGroundContact ? 1 : 0;
        gState[111] = wheels.BackLeft.RTState.HasGroundContact ? 1 : 0;
        gState[112] = uint8(wheels.FrontLeft.RTState.ContactMaterialId);
        gState[113] = uint8(wheels.FrontRight.RTState.ContactMaterialId);
        gState[114] = uint8(wheels.BackRight.RTState.ContactMaterialId);
        gState[115] = uint8(wheels.BackLeft.RTState.ContactMaterialId);
    } else {
        PutU32(gState, 108, 0);
        PutU32(gState, 112, 0);
    }
    PutU32(gState, 116, 0);
    return SendBytes(gState);
}

// Checkpoints to pass to finish, laps included: OnCheckpointCountChanged's `target` once it
// was called this race, before that PlayerInfo.Checkpoints.Length (one entry per logical
// checkpoint, laps included; CheckpointStates counts one lap only: plugins/API.md).
int CheckpointTarget(TM::PlayerInfo@ info)
{
    return gCheckpointTarget > 0 ? gCheckpointTarget : int(info.Checkpoints.Length);
}

// ---------------------------------------------------------------- little-endian packing

void PutU32(array<uint8>@ bytes, uint offset, uint value)
{
    bytes[offset] = uint8(value & 0xFF);
    bytes[offset + 1] = uint8((value >> 8) & 0xFF);
    bytes[offset + 2] = uint8((value >> 16) & 0xFF);
    bytes[offset + 3] = uint8((value >> 24) & 0xFF);
}

void PutI32(array<uint8>@ bytes, uint offset, int value)
{
    PutU32(bytes, offset, uint(value));
}

uint GetU32(array<uint8>@ bytes, uint offset)
{
    return uint(bytes[offset]) | (uint(bytes[offset + 1]) << 8) | (uint(bytes[offset + 2]) << 16)
         | (uint(bytes[offset + 3]) << 24);
}

// value * scale rounded half away from zero, clamped to int32 (NaN -> 0), as the STATE
// record's fixed point wants it.
int Fixed(double value, double scale)
{
    double x = value * scale;
    if (x != x) return 0;
    if (x >= 2147483647.0) return 2147483647;
    if (x <= -2147483648.0) return -2147483647 - 1;
    return x >= 0.0 ? int(x + 0.5) : int(x - 0.5);
}

