// Registration of the TMInterface API the plugin uses: exactly the rows of plugins/API.md.
//
// Every registration goes through ApiRegistrar, which also records it; `--dump-api`
// prints that record and tests/test_harness_build.py compares it with plugins/API.md.
#include "api.hpp"

#include <angelscript/scriptarray.h>

#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

#include "net.hpp"

namespace harness {

using namespace AngelScript;

namespace {

Host& H() { return *Host::current; }

void ScriptError(const std::string& message) {
    if (asIScriptContext* ctx = asGetActiveContext()) ctx->SetException(message.c_str());
}

asITypeInfo* TypeOf(const char* decl) { return H().Engine()->GetTypeInfoByDecl(decl); }

// --- add-on types under TMInterface's member names
asUINT StringLength(const std::string& s) { return static_cast<asUINT>(s.size()); }

// --- value types
void Vec2Construct(float x, float y, Vec2* self) { new (self) Vec2{x, y}; }
void Mat3YawPitchRoll(float& yaw, float& pitch, float& roll, Mat3* self) { self->GetYawPitchRoll(yaw, pitch, roll); }

// --- PluginInfo, CommandList, SimulationState
PluginInfo* NewPluginInfo() { return new PluginInfo(); }
CommandListObj* NewCommandList() { return new CommandListObj(); }
bool CommandListProcess(CommandListObj* self) {
    H().QueueCommandList(self->content);  // runs after the launch configstring (README.md)
    return true;
}

SimulationStateObj* NewSimulationState(const CScriptArray& data) {
    if (data.GetSize() < kSimStateMinSize) {
        ScriptError("SimulationState: " + std::to_string(data.GetSize()) + " bytes is shorter than a state (" +
                    std::to_string(kSimStateMinSize) + ")");
        return nullptr;
    }
    auto* s = new SimulationStateObj();
    const auto* bytes = static_cast<const uint8_t*>(const_cast<CScriptArray&>(data).GetBuffer());
    s->data.assign(bytes, bytes + data.GetSize());
    return s;
}

CScriptArray* SimulationStateToArray(SimulationStateObj* self) {
    CScriptArray* out = CScriptArray::Create(TypeOf("array<uint8>"), static_cast<asUINT>(self->data.size()));
    if (!self->data.empty()) std::memcpy(out->GetBuffer(), self->data.data(), self->data.size());
    return out;
}

// --- SimulationManager
int32_t SmRaceTime(SimManager* self) { return self->host->RaceState().RaceTime(); }
bool SmInRace(SimManager* /*self*/) { return true; }  // the harness is always in a race
PlayerInfoView* SmPlayerInfo(SimManager* self) { return &self->host->RaceState().player; }
HmsDynaView* SmDyna(SimManager* self) { return &self->host->RaceState().dyna; }
CarView* SmSceneVehicleCar(SimManager* self) { return &self->host->RaceState().car; }
WheelsView* SmWheels(SimManager* self) { return &self->host->RaceState().wheels; }
void SmSetInputState(int type, int value, SimManager* self) { self->host->RaceState().SetInput(type, value); }
InputStateValue SmGetInputState(SimManager* self) { return self->host->RaceState().Inputs(); }
void SmSetSpeed(double speed, SimManager* self) { self->host->SetSpeed(speed); }
void SmGiveUp(SimManager* self) { self->host->RaceState().GiveUp(); }
void SmRespawn(SimManager* self) { self->host->RaceState().Respawn(); }
void SmPreventSimulationFinish(SimManager* self) { self->host->RaceState().PreventFinish(); }
SimulationStateObj* SmSaveState(SimManager* self) {
    auto* s = new SimulationStateObj();
    s->data = self->host->RaceState().Save();
    return s;
}
void SmRewindToState(SimulationStateObj* state, bool /*resetCamera*/, SimManager* self) {
    if (state == nullptr) {
        ScriptError("SimulationManager::RewindToState: the state is null");
        return;
    }
    self->host->RaceState().Restore(state->data.data(), state->data.size());
    state->Release();  // a handle parameter arrives with a reference for the callee
}
SimManager* GetSimulationManager() { return H().Manager(); }

// --- TM views
int32_t PiDisplaySpeed(PlayerInfoView* self) { return self->displaySpeed; }
uint32_t PiCurCheckpointCount(PlayerInfoView* self) { return self->curCheckpointCount; }
uint32_t PiCurLap(PlayerInfoView* self) { return self->curLap; }
bool PiRaceFinished(PlayerInfoView* self) { return self->raceFinished; }
CScriptArray* PiCheckpointStates(PlayerInfoView* self) {
    CScriptArray* out = CScriptArray::Create(TypeOf("array<int>"), self->checkpointTarget);
    for (asUINT i = 0; i < self->checkpointTarget; ++i) {
        *static_cast<int32_t*>(out->At(i)) = i < self->curCheckpointCount ? 1 : 0;
    }
    return out;
}
HmsStateDynaView* DynaCurrentState(HmsDynaView* self) { return &self->currentState; }
Iso4 StateLocation(HmsStateDynaView* self) { return self->location; }
Vec3 StateLinearSpeed(HmsStateDynaView* self) { return self->linearSpeed; }
Vec3 StateAngularSpeed(HmsStateDynaView* self) { return self->angularSpeed; }
EngineView* CarEngine(CarView* self) { return &self->engine; }
int32_t EngineGear(EngineView* self) { return self->gear; }
float EngineActualRpm(EngineView* self) { return self->actualRpm; }
WheelView* WheelsFrontLeft(WheelsView* self) { return &self->frontLeft; }
WheelView* WheelsFrontRight(WheelsView* self) { return &self->frontRight; }
WheelView* WheelsBackRight(WheelsView* self) { return &self->backRight; }
WheelView* WheelsBackLeft(WheelsView* self) { return &self->backLeft; }
RtStateView* WheelRtState(WheelView* self) { return &self->rtState; }
bool RtHasGroundContact(RtStateView* self) { return self->hasGroundContact; }
int32_t RtContactMaterialId(RtStateView* self) { return self->contactMaterialId; }

// --- Net::Socket
NetSocket* NewSocket() { return new NetSocket(); }
bool SockListen(const std::string& host, uint16_t port, NetSocket* self) { return self->Listen(host, port); }
NetSocket* SockAccept(uint32_t timeout, NetSocket* self) { return self->Accept(timeout); }
void SockSetNoDelay(bool on, NetSocket* self) { self->SetNoDelay(on); }
uint32_t SockAvailable(NetSocket* self) { return self->Available(); }
std::string SockRemoteIP(NetSocket* self) { return self->RemoteIP(); }
int32_t SockReadInt32(NetSocket* self) { return self->ReadInt32(); }
uint32_t SockReadUint32(NetSocket* self) { return self->ReadUint32(); }
float SockReadFloat(NetSocket* self) { return self->ReadFloat(); }
CScriptArray* SockReadBytes(uint32_t count, NetSocket* self) { return self->ReadBytes(count); }
std::string SockReadString(uint32_t count, NetSocket* self) { return self->ReadString(count); }
bool SockWriteBytes(const CScriptArray& data, NetSocket* self) { return self->WriteBytes(data); }
bool SockWriteString(const std::string& data, NetSocket* self) { return self->WriteString(data); }

// --- globals
CScriptArray* CaptureScreenshot(Vec2& size) {
    if (!H().InRender()) {
        ScriptError("Graphics::CaptureScreenshot can only be called in Render()");
        return nullptr;
    }
    int w = static_cast<int>(std::lround(size.x));
    int h = static_cast<int>(std::lround(size.y));
    if (w == 0 && h == 0) {  // (0, 0): the window size
        w = 640;
        h = 480;
    }
    if (w < 1 || h < 1 || w > 8192 || h > 8192) {
        ScriptError("Graphics::CaptureScreenshot: size " + std::to_string(w) + "x" + std::to_string(h) +
                    " is outside 1..8192");
        return nullptr;
    }
    CScriptArray* out = CScriptArray::Create(TypeOf("array<uint8>"), static_cast<asUINT>(w * h * 4));
    H().RaceState().Render(w, h, static_cast<uint8_t*>(out->GetBuffer()));
    size.x = static_cast<float>(w);
    size.y = static_cast<float>(h);
    return out;
}
asQWORD TimeNow() { return H().NowMs(); }
void Log(const std::string& message) { std::fprintf(stderr, "[plugin] %s\n", message.c_str()); }
void Print(const std::string& message) { std::fprintf(stderr, "[plugin] %s\n", message.c_str()); }
void RegisterVariableDouble(const std::string& name, double value) { H().RegisterVariable(name, value); }
void RegisterVariableString(const std::string& name, const std::string& value) { H().RegisterVariable(name, value); }
double GetVariableDouble(const std::string& name) { return H().GetVariableDouble(name); }
std::string GetVariableString(const std::string& name) { return H().GetVariableString(name); }
void SetVariableString(const std::string& name, const std::string& value) { H().SetVariable(name, value); }
void RegisterCustomCommand(const std::string& name, const std::string& /*description*/, asIScriptFunction* cb) {
    if (cb == nullptr) {
        ScriptError("RegisterCustomCommand: the callback is null");
        return;
    }
    H().RegisterCustomCommand(name, cb);  // keeps the reference the handle arrived with
}
void ExecuteCommand(const std::string& command) { H().Execute(command); }

// "int ReadInt32()" -> "ReadInt32"; "uint get_Available()" -> "get_Available"; "float x" -> "x".
std::string DeclaredName(const std::string& decl) {
    size_t end = decl.find('(');
    if (end == std::string::npos) end = decl.size();
    while (end > 0 && decl[end - 1] == ' ') --end;
    size_t begin = end;
    while (begin > 0 && (std::isalnum(static_cast<unsigned char>(decl[begin - 1])) || decl[begin - 1] == '_')) --begin;
    return decl.substr(begin, end - begin);
}

}  // namespace

void ApiRegistrar::Check(int r, const std::string& what) {
    if (r < 0) {
        std::fprintf(stderr, "[harness] registering %s failed (AngelScript error %d)\n", what.c_str(), r);
        ok_ = false;
    }
}

std::string ApiRegistrar::Qualified(const std::string& name) const { return ns_.empty() ? name : ns_ + "::" + name; }

void ApiRegistrar::Note(const std::string& symbol, const std::string& kind, const std::string& decl) {
    host_.api_.push_back(ApiEntry{symbol, kind, decl});
}

void ApiRegistrar::Namespace(const std::string& ns) {
    Check(engine_->SetDefaultNamespace(ns.c_str()), "namespace " + ns);
    ns_ = ns;
}

void ApiRegistrar::RefType(const char* name, bool counted) {
    Check(engine_->RegisterObjectType(name, 0, counted ? asOBJ_REF : asOBJ_REF | asOBJ_NOCOUNT), name);
    Note(Qualified(name), "type", counted ? "ref" : "ref, no count");
}

void ApiRegistrar::ValueType(const char* name, int size, asDWORD traits) {
    Check(engine_->RegisterObjectType(name, size, asOBJ_VALUE | asOBJ_POD | traits), name);
    Note(Qualified(name), "type", "value");
}

void ApiRegistrar::Factory(const char* type, const char* decl, const asSFuncPtr& fn) {
    Check(engine_->RegisterObjectBehaviour(type, asBEHAVE_FACTORY, decl, fn, asCALL_CDECL), decl);
    Note(Qualified(type), "factory", decl);
}

void ApiRegistrar::Constructor(const char* type, const char* decl, const asSFuncPtr& fn) {
    Check(engine_->RegisterObjectBehaviour(type, asBEHAVE_CONSTRUCT, decl, fn, asCALL_CDECL_OBJLAST), decl);
    Note(Qualified(type), "constructor", decl);
}

void ApiRegistrar::RefCounting(const char* type, const asSFuncPtr& addRef, const asSFuncPtr& release) {
    Check(engine_->RegisterObjectBehaviour(type, asBEHAVE_ADDREF, "void f()", addRef, asCALL_THISCALL), type);
    Check(engine_->RegisterObjectBehaviour(type, asBEHAVE_RELEASE, "void f()", release, asCALL_THISCALL), type);
}

void ApiRegistrar::Method(const char* type, const char* decl, const asSFuncPtr& fn, asDWORD conv) {
    Check(engine_->RegisterObjectMethod(type, decl, fn, conv), std::string(type) + " " + decl);
    std::string name = DeclaredName(decl);
    bool accessor = name.rfind("get_", 0) == 0 || name.rfind("set_", 0) == 0;
    std::string owner = std::string(type).find('<') != std::string::npos ? std::string(type) : Qualified(type);
    Note(owner + "::" + (accessor ? name.substr(4) : name), accessor ? "property" : "method", decl);
}

void ApiRegistrar::Property(const char* type, const char* decl, int offset) {
    Check(engine_->RegisterObjectProperty(type, decl, offset), std::string(type) + " " + decl);
    Note(Qualified(type) + "::" + DeclaredName(decl), "property", decl);
}

void ApiRegistrar::Function(const char* decl, const asSFuncPtr& fn) {
    Check(engine_->RegisterGlobalFunction(decl, fn, asCALL_CDECL), decl);
    std::string name = DeclaredName(decl);
    bool accessor = name.rfind("get_", 0) == 0;
    Note(Qualified(accessor ? name.substr(4) : name), accessor ? "property" : "function", decl);
}

void ApiRegistrar::Enum(const char* name) {
    Check(engine_->RegisterEnum(name), name);
    Note(Qualified(name), "enum", name);
}

void ApiRegistrar::EnumValue(const char* type, const char* name, int value) {
    Check(engine_->RegisterEnumValue(type, name, value), std::string(type) + "::" + name);
    Note(Qualified(type) + "::" + name, "enum value", name);
}

void ApiRegistrar::Funcdef(const char* decl) {
    Check(engine_->RegisterFuncdef(decl), decl);
    Note(Qualified(DeclaredName(decl)), "funcdef", decl);
}

bool ApiRegistrar::RegisterAll() {
    // TMInterface's names on the standard add-on types.
    Namespace("");
    Method("array<T>", "uint get_Length() const", asMETHOD(CScriptArray, GetSize), asCALL_THISCALL);
    Method("array<T>", "void Add(const T&in value)", asMETHOD(CScriptArray, InsertLast), asCALL_THISCALL);
    Method("array<T>", "void Resize(uint length)", asMETHODPR(CScriptArray, Resize, (asUINT), void), asCALL_THISCALL);
    Method("string", "uint get_Length() const", asFUNCTION(StringLength));

    // Value types.
    ValueType("vec2", sizeof(Vec2), asGetTypeTraits<Vec2>() | asOBJ_APP_CLASS_ALLFLOATS);
    ValueType("vec3", sizeof(Vec3), asGetTypeTraits<Vec3>() | asOBJ_APP_CLASS_ALLFLOATS);
    ValueType("mat3", sizeof(Mat3), asGetTypeTraits<Mat3>() | asOBJ_APP_CLASS_ALLFLOATS);
    ValueType("iso4", sizeof(Iso4), asGetTypeTraits<Iso4>() | asOBJ_APP_CLASS_ALLFLOATS);
    ValueType("InputState", sizeof(InputStateValue), asGetTypeTraits<InputStateValue>() | asOBJ_APP_CLASS_ALLINTS);
    Constructor("vec2", "void f(float x, float y)", asFUNCTION(Vec2Construct));
    Property("vec2", "float x", offsetof(Vec2, x));
    Property("vec2", "float y", offsetof(Vec2, y));
    Property("vec3", "float x", offsetof(Vec3, x));
    Property("vec3", "float y", offsetof(Vec3, y));
    Property("vec3", "float z", offsetof(Vec3, z));
    Method("mat3", "void GetYawPitchRoll(float&out yaw, float&out pitch, float&out roll)", asFUNCTION(Mat3YawPitchRoll));
    Property("iso4", "mat3 Rotation", offsetof(Iso4, Rotation));
    Property("iso4", "vec3 Position", offsetof(Iso4, Position));
    Property("InputState", "int Steer", offsetof(InputStateValue, Steer));
    Property("InputState", "int Gas", offsetof(InputStateValue, Gas));
    Property("InputState", "bool Up", offsetof(InputStateValue, Up));
    Property("InputState", "bool Down", offsetof(InputStateValue, Down));
    Property("InputState", "bool Left", offsetof(InputStateValue, Left));
    Property("InputState", "bool Right", offsetof(InputStateValue, Right));

    Enum("InputType");
    EnumValue("InputType", "Up", static_cast<int>(Input::Up));
    EnumValue("InputType", "Down", static_cast<int>(Input::Down));
    EnumValue("InputType", "Steer", static_cast<int>(Input::Steer));
    EnumValue("InputType", "Gas", static_cast<int>(Input::Gas));

    // Reference types (declared before any declaration names them).
    RefType("PluginInfo", true);
    RefType("SimulationManager", false);
    RefType("SimulationState", true);
    RefType("SimulationWheels", false);
    RefType("CommandList", true);
    Namespace("TM");
    RefType("PlayerInfo", false);
    RefType("HmsDyna", false);
    RefType("HmsStateDyna", false);
    RefType("SceneVehicleCar", false);
    RefType("CarEngine", false);
    RefType("WheelRTState", false);
    Namespace("TM::SceneVehicleCar");
    RefType("SimulationWheel", false);
    Namespace("Net");
    RefType("Socket", true);
    Namespace("");

    Factory("PluginInfo", "PluginInfo@ f()", asFUNCTION(NewPluginInfo));
    RefCounting("PluginInfo", asMETHOD(PluginInfo, AddRef), asMETHOD(PluginInfo, Release));
    Property("PluginInfo", "string Author", offsetof(PluginInfo, author));
    Property("PluginInfo", "string Name", offsetof(PluginInfo, name));
    Property("PluginInfo", "string Description", offsetof(PluginInfo, description));
    Property("PluginInfo", "string Version", offsetof(PluginInfo, version));

    Factory("SimulationState", "SimulationState@ f(const array<uint8>&in data)", asFUNCTION(NewSimulationState));
    RefCounting("SimulationState", asMETHOD(SimulationStateObj, AddRef), asMETHOD(SimulationStateObj, Release));
    Method("SimulationState", "array<uint8>@ ToArray()", asFUNCTION(SimulationStateToArray));

    Method("SimulationManager", "int get_RaceTime()", asFUNCTION(SmRaceTime));
    Method("SimulationManager", "bool get_InRace()", asFUNCTION(SmInRace));
    Method("SimulationManager", "TM::PlayerInfo@ get_PlayerInfo()", asFUNCTION(SmPlayerInfo));
    Method("SimulationManager", "TM::HmsDyna@ get_Dyna()", asFUNCTION(SmDyna));
    Method("SimulationManager", "TM::SceneVehicleCar@ get_SceneVehicleCar()", asFUNCTION(SmSceneVehicleCar));
    Method("SimulationManager", "SimulationWheels@ get_Wheels()", asFUNCTION(SmWheels));
    Method("SimulationManager", "void SetInputState(InputType type, int value)", asFUNCTION(SmSetInputState));
    Method("SimulationManager", "InputState GetInputState()", asFUNCTION(SmGetInputState));
    Method("SimulationManager", "void SetSpeed(double speed)", asFUNCTION(SmSetSpeed));
    Method("SimulationManager", "void GiveUp()", asFUNCTION(SmGiveUp));
    Method("SimulationManager", "void Respawn()", asFUNCTION(SmRespawn));
    Method("SimulationManager", "void PreventSimulationFinish()", asFUNCTION(SmPreventSimulationFinish));
    Method("SimulationManager", "SimulationState@ SaveState()", asFUNCTION(SmSaveState));
    Method("SimulationManager", "void RewindToState(SimulationState@ state, bool resetCamera = true)",
           asFUNCTION(SmRewindToState));
    Function("SimulationManager@ GetSimulationManager()", asFUNCTION(GetSimulationManager));

    Method("SimulationWheels", "TM::SceneVehicleCar::SimulationWheel@ get_FrontLeft()", asFUNCTION(WheelsFrontLeft));
    Method("SimulationWheels", "TM::SceneVehicleCar::SimulationWheel@ get_FrontRight()", asFUNCTION(WheelsFrontRight));
    Method("SimulationWheels", "TM::SceneVehicleCar::SimulationWheel@ get_BackRight()", asFUNCTION(WheelsBackRight));
    Method("SimulationWheels", "TM::SceneVehicleCar::SimulationWheel@ get_BackLeft()", asFUNCTION(WheelsBackLeft));

    Namespace("TM");
    Method("PlayerInfo", "int get_DisplaySpeed()", asFUNCTION(PiDisplaySpeed));
    Method("PlayerInfo", "uint get_CurCheckpointCount()", asFUNCTION(PiCurCheckpointCount));
    Method("PlayerInfo", "uint get_CurLap()", asFUNCTION(PiCurLap));
    Method("PlayerInfo", "bool get_RaceFinished()", asFUNCTION(PiRaceFinished));
    Method("PlayerInfo", "array<int>@ get_CheckpointStates()", asFUNCTION(PiCheckpointStates));
    Method("HmsDyna", "TM::HmsStateDyna@ get_CurrentState()", asFUNCTION(DynaCurrentState));
    Method("HmsStateDyna", "iso4 get_Location()", asFUNCTION(StateLocation));
    Method("HmsStateDyna", "vec3 get_LinearSpeed()", asFUNCTION(StateLinearSpeed));
    Method("HmsStateDyna", "vec3 get_AngularSpeed()", asFUNCTION(StateAngularSpeed));
    Method("SceneVehicleCar", "TM::CarEngine@ get_CarEngine()", asFUNCTION(CarEngine));
    Method("CarEngine", "int get_Gear()", asFUNCTION(EngineGear));
    Method("CarEngine", "float get_ActualRPM()", asFUNCTION(EngineActualRpm));
    Method("WheelRTState", "bool get_HasGroundContact()", asFUNCTION(RtHasGroundContact));
    Method("WheelRTState", "int get_ContactMaterialId()", asFUNCTION(RtContactMaterialId));
    Namespace("TM::SceneVehicleCar");
    Method("SimulationWheel", "TM::WheelRTState@ get_RTState()", asFUNCTION(WheelRtState));

    Namespace("Net");
    Factory("Socket", "Socket@ f()", asFUNCTION(NewSocket));
    RefCounting("Socket", asMETHOD(NetSocket, AddRef), asMETHOD(NetSocket, Release));
    Method("Socket", "bool Listen(const string&in host, uint16 port)", asFUNCTION(SockListen));
    Method("Socket", "Socket@ Accept(uint timeout)", asFUNCTION(SockAccept));
    Method("Socket", "void set_NoDelay(bool value)", asFUNCTION(SockSetNoDelay));
    Method("Socket", "uint get_Available()", asFUNCTION(SockAvailable));
    Method("Socket", "string get_RemoteIP()", asFUNCTION(SockRemoteIP));
    Method("Socket", "int ReadInt32()", asFUNCTION(SockReadInt32));
    Method("Socket", "uint ReadUint32()", asFUNCTION(SockReadUint32));
    Method("Socket", "float ReadFloat()", asFUNCTION(SockReadFloat));
    Method("Socket", "array<uint8>@ ReadBytes(uint count)", asFUNCTION(SockReadBytes));
    Method("Socket", "string ReadString(uint count)", asFUNCTION(SockReadString));
    Method("Socket", "bool Write(const array<uint8>&in data)", asFUNCTION(SockWriteBytes));
    Method("Socket", "bool Write(const string&in data)", asFUNCTION(SockWriteString));

    Namespace("Graphics");
    Function("array<uint8>@ CaptureScreenshot(vec2&inout size)", asFUNCTION(CaptureScreenshot));
    Namespace("Time");
    Function("uint64 get_Now()", asFUNCTION(TimeNow));

    Namespace("");
    Function("void log(const string&in message)", asFUNCTION(Log));
    Function("void print(const string&in message)", asFUNCTION(Print));
    Function("void RegisterVariable(const string&in name, double defaultValue)", asFUNCTION(RegisterVariableDouble));
    Function("void RegisterVariable(const string&in name, const string&in defaultValue)",
             asFUNCTION(RegisterVariableString));
    Function("double GetVariableDouble(const string&in name)", asFUNCTION(::harness::GetVariableDouble));
    Function("string GetVariableString(const string&in name)", asFUNCTION(::harness::GetVariableString));
    Function("void SetVariable(const string&in name, const string&in value)", asFUNCTION(SetVariableString));
    Funcdef("void CustomCommandCallback(int fromTime, int toTime, const string&in commandLine, const array<string>&in args)");
    Function("void RegisterCustomCommand(const string&in name, const string&in description, CustomCommandCallback@ callback)",
             asFUNCTION(::harness::RegisterCustomCommand));
    Function("void ExecuteCommand(const string&in command)", asFUNCTION(::harness::ExecuteCommand));
    Factory("CommandList", "CommandList@ f()", asFUNCTION(NewCommandList));
    RefCounting("CommandList", asMETHOD(CommandListObj, AddRef), asMETHOD(CommandListObj, Release));
    Property("CommandList", "string Content", offsetof(CommandListObj, content));
    Method("CommandList", "bool Process()", asFUNCTION(CommandListProcess));

    // The callbacks the harness calls (looked up in the plugin by these declarations).
    for (const char* decl : kCallbackDecls) Note(DeclaredName(decl), "callback", decl);
    return ok_;
}

}  // namespace harness
