// The TMInterface API that only public plugins use: registered so that `tmstate
// plugin-check` compiles them unmodified (plugins/API.md, table "Used by public plugins",
// each row citing the plugin that uses the symbol and how).
//
// The standard add-ons under TMInterface's PascalCase names (array, string, dictionary)
// run for real. Everything else (UI, bruteforce, triggers, input buffers, Math, Text, ...)
// is compile-only: one generic stub that does nothing. tmstate.as never calls those.
#include <angelscript/scriptarray.h>
#include <angelscript/scriptdictionary.h>
#include <angelscript/scriptstdstring.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <cstddef>

#include "api.hpp"
#include "types.hpp"

namespace harness {

using namespace AngelScript;

namespace {

void Stub(asIScriptGeneric* /*gen*/) {}

// Real helpers under TMInterface's names.
bool ArrayIsEmpty(CScriptArray* self) { return self->IsEmpty(); }
int ArrayFind(void* value, CScriptArray* self) { return self->Find(value); }
void ArrayRemoveAtCount(asUINT index, asUINT count, CScriptArray* self) {
    for (asUINT i = 0; i < count && index < self->GetSize(); ++i) self->RemoveAt(index);
}
CScriptArray* StringSplit(const std::string& delimiter, const std::string& self) {
    CScriptArray* out = CScriptArray::Create(asGetActiveContext()->GetEngine()->GetTypeInfoByDecl("array<string>"));
    size_t start = 0;
    while (!delimiter.empty()) {
        size_t at = self.find(delimiter, start);
        if (at == std::string::npos) break;
        out->Resize(out->GetSize() + 1);
        *static_cast<std::string*>(out->At(out->GetSize() - 1)) = self.substr(start, at - start);
        start = at + delimiter.size();
    }
    out->Resize(out->GetSize() + 1);
    *static_cast<std::string*>(out->At(out->GetSize() - 1)) = self.substr(start);
    return out;
}
int StringFindFirst(const std::string& what, asUINT start, const std::string& self) {
    size_t at = self.find(what, start);
    return at == std::string::npos ? -1 : static_cast<int>(at);
}
bool StringIsEmpty(const std::string& self) { return self.empty(); }
void StringResize(asUINT length, std::string& self) { self.resize(length); }
void ArrayClear(CScriptArray* self) { self->Resize(0); }
WheelView* WheelsAt(asUINT index, WheelsView* self) {
    switch (index) {
        case 0: return &self->frontLeft;
        case 1: return &self->frontRight;
        case 2: return &self->backRight;
        case 3: return &self->backLeft;
    }
    if (asIScriptContext* ctx = asGetActiveContext()) ctx->SetException("SimulationWheels: index out of range (0..3)");
    return nullptr;
}
HmsStateDynaView* DynaRefStateCurrent(HmsDynaView* self) { return &self->currentState; }

// Storage of the compile-only value types (their properties are read by offset).
struct InputEventValueData {
    int32_t analog = 0;
    uint32_t eventIndex = 0;
    bool binary = false;
};
struct InputEventData {
    uint32_t time = 0;
    InputEventValueData value;
};

}  // namespace

// TMSTATE_HARNESS_SKIP="<owner> <declaration>[;...]" leaves compile-only declarations out, so the
// evidence for each row of plugins/API.md can be checked: without it, a public plugin
// must fail to compile (an ablation run over the table, plugins/harness/README.md).
bool Skipped(const std::string& owner, const char* decl) {
    static const char* skip = std::getenv("TMSTATE_HARNESS_SKIP");  // ';' separates several
    if (skip == nullptr) return false;
    const std::string list = std::string(";") + skip + ";";
    return list.find(";" + owner + " " + decl + ";") != std::string::npos;
}

void ApiRegistrar::StubFunction(const char* decl) {
    if (Skipped(ns_, decl)) return;
    Check(engine_->RegisterGlobalFunction(decl, asFUNCTION(Stub), asCALL_GENERIC), decl);
    std::string name = DeclaredName(decl);
    bool accessor = name.rfind("get_", 0) == 0;
    Note(Qualified(accessor ? name.substr(4) : name), accessor ? "property" : "function", decl);
}

void ApiRegistrar::StubMethod(const char* type, const char* decl) {
    if (Skipped(type, decl)) return;
    Check(engine_->RegisterObjectMethod(type, decl, asFUNCTION(Stub), asCALL_GENERIC), std::string(type) + " " + decl);
    std::string name = DeclaredName(decl);
    bool accessor = name.rfind("get_", 0) == 0 || name.rfind("set_", 0) == 0;
    std::string owner = std::string(type).find('<') != std::string::npos ? std::string(type) : Qualified(type);
    Note(owner + "::" + (accessor ? name.substr(4) : name), accessor ? "property" : "method", decl);
}

void ApiRegistrar::StubBehaviour(const char* type, asEBehaviours behaviour, const char* decl, const char* kind) {
    Check(engine_->RegisterObjectBehaviour(type, behaviour, decl, asFUNCTION(Stub), asCALL_GENERIC),
          std::string(type) + " " + decl);
    Note(Qualified(type), kind, decl);
}

void ApiRegistrar::StubFactory(const char* type, const char* decl) { StubBehaviour(type, asBEHAVE_FACTORY, decl, "factory"); }

void ApiRegistrar::StubConstructor(const char* type, const char* decl) {
    StubBehaviour(type, asBEHAVE_CONSTRUCT, decl, "constructor");
}

// Standard add-ons under TMInterface's names (real implementations); before anything
// else, since AngelScript takes no more template methods once an instance exists.
void ApiRegistrar::RegisterCompatAddOns() {
    Namespace("");
    Method("array<T>", "bool IsEmpty() const", asFUNCTION(ArrayIsEmpty));
    Method("array<T>", "void RemoveAt(uint index)", asMETHODPR(CScriptArray, RemoveAt, (asUINT), void), asCALL_THISCALL);
    Method("array<T>", "void RemoveAt(uint index, uint count)", asFUNCTION(ArrayRemoveAtCount));
    Method("array<T>", "void InsertAt(uint index, const T&in value)",
           asMETHODPR(CScriptArray, InsertAt, (asUINT, void*), void), asCALL_THISCALL);
    Method("array<T>", "int Find(const T&in value) const", asFUNCTION(ArrayFind));
    Method("array<T>", "void Clear()", asFUNCTION(ArrayClear));
    Method("string", "array<string>@ Split(const string&in delimiter) const", asFUNCTION(StringSplit));
    Method("string", "int FindFirst(const string&in str, uint start = 0) const", asFUNCTION(StringFindFirst));
    Method("string", "bool IsEmpty() const", asFUNCTION(StringIsEmpty));
    Method("string", "void Resize(uint length)", asFUNCTION(StringResize));
    RegisterScriptDictionary(engine_);
    Note("dictionary", "type", "add-on (scriptdictionary)");
    Method("dictionary", "bool Get(const string&in key, int64&out value) const",
           asMETHODPR(CScriptDictionary, Get, (const std::string&, asINT64&) const, bool), asCALL_THISCALL);
    Method("dictionary", "bool Get(const string&in key, ?&out value) const",
           asMETHODPR(CScriptDictionary, Get, (const std::string&, void*, int) const, bool), asCALL_THISCALL);
    Method("dictionary", "void Set(const string&in key, const ?&in value)",
           asMETHODPR(CScriptDictionary, Set, (const std::string&, void*, int), void), asCALL_THISCALL);
    Method("dictionary", "array<string>@ GetKeys() const", asMETHOD(CScriptDictionary, GetKeys), asCALL_THISCALL);
    Method("dictionary", "bool Delete(const string&in key)", asMETHOD(CScriptDictionary, Delete), asCALL_THISCALL);
}

void ApiRegistrar::RegisterCompat() {
    // Enums.
    Enum("Severity");
    EnumValue("Severity", "Info", 0);
    EnumValue("Severity", "Success", 1);
    EnumValue("Severity", "Warning", 2);
    EnumValue("Severity", "Error", 3);
    Enum("VariableType");
    EnumValue("VariableType", "Boolean", 0);
    EnumValue("VariableType", "Double", 1);
    EnumValue("VariableType", "String", 2);
    Enum("CommandListProcessOption");
    EnumValue("CommandListProcessOption", "ExecuteImmediately", 1);  // the value is the harness's
    Enum("BFPhase");
    EnumValue("BFPhase", "Initial", 0);
    EnumValue("BFPhase", "Search", 1);
    Enum("BFEvaluationDecision");
    EnumValue("BFEvaluationDecision", "DoNothing", 0);
    EnumValue("BFEvaluationDecision", "Accept", 1);
    EnumValue("BFEvaluationDecision", "Reject", 2);
    EnumValue("BFEvaluationDecision", "Stop", 3);
    Namespace("TM");
    Enum("GameState");
    EnumValue("GameState", "StartUp", 0);
    EnumValue("GameState", "Menus", 1);
    Namespace("");

    // Types only public plugins use (compile-only). Value types are plain storage.
    RefType("SimulationStateFile", false);
    RefType("BFEvaluationResponse", false);
    RefType("BFEvaluationInfo", false);
    RefType("SimulationResult", false);
    ValueType("Trigger3D", 32, asOBJ_APP_CLASS | asOBJ_APP_CLASS_ALLFLOATS);
    ValueType("EventIndices", 32, asOBJ_APP_CLASS | asOBJ_APP_CLASS_ALLINTS);
    Enum("InputFormatFlags");
    Namespace("TM");
    RefType("InputEventBuffer", false);
    ValueType("InputEvent", 16, asOBJ_APP_CLASS | asOBJ_APP_CLASS_ALLINTS);
    RefType("GameCamera", false);
    RefType("SurfaceHandler", false);
    RefType("VariableInfo", false);
    ValueType("InputEventValue", sizeof(InputEventValueData), asOBJ_APP_CLASS | asOBJ_APP_CLASS_ALLINTS);
    Enum("PlugSurfaceMaterialId");
    Namespace("");
    Property("TM::InputEventValue", "int Analog", offsetof(InputEventValueData, analog));
    Property("TM::InputEventValue", "bool Binary", offsetof(InputEventValueData, binary));
    Property("TM::InputEventValue", "uint EventIndex", offsetof(InputEventValueData, eventIndex));
    Property("TM::InputEvent", "uint Time", offsetof(InputEventData, time));
    Property("TM::InputEvent", "TM::InputEventValue Value", offsetof(InputEventData, value));
    StubMethod("TM::InputEventBuffer", "const TM::InputEvent& opIndex(uint index) const");
    StubMethod("TM::GameCamera", "iso4 get_Location() const");
    StubFunction("TM::GameCamera@ GetCurrentCamera()");
    StubMethod("TM::SurfaceHandler", "iso4 get_Location() const");
    StubMethod("TM::SceneVehicleCar::SimulationWheel", "TM::SurfaceHandler@ get_SurfaceHandler() const");
    StubMethod("TM::VariableInfo", "string get_Name() const");
    StubMethod("TM::VariableInfo", "VariableType get_Type() const");
    Method("SimulationWheels", "TM::SceneVehicleCar::SimulationWheel@ opIndex(uint index)", asFUNCTION(WheelsAt));
    Method("TM::HmsDyna", "TM::HmsStateDyna@ get_RefStateCurrent()", asFUNCTION(DynaRefStateCurrent));
    StubMethod("TM::HmsDyna", "TM::HmsStateDyna@ get_RefStatePrevious()");
    StubMethod("TM::SceneVehicleCar", "vec3 get_CurrentLocalSpeed()");
    StubMethod("TM::SceneVehicleCar", "bool get_IsSliding()");
    StubMethod("TM::SceneVehicleCar", "bool get_IsFreeWheeling()");
    StubMethod("TM::SceneVehicleCar", "bool get_HasAnyLateralContact()");
    StubMethod("TM::CarEngine", "int get_RearGear()");
    StubMethod("TM::PlayerInfo", "int get_RaceTime()");
    StubMethod("SimulationState", "TM::PlayerInfo@ get_PlayerInfo()");
    StubMethod("SimulationManager", "void set_SimulationOnly(bool value)");
    StubMethod("SimulationManager", "int get_EventsDuration()");
    StubMethod("SimulationManager", "void RewindToState(SimulationStateFile@ state)");
    StubMethod("SimulationStateFile", "SimulationState@ ToState()");
    StubMethod("Trigger3D", "bool opImplConv() const");
    StubFunction("void GetTrigger(Trigger3D&out trigger, uint id)");
    StubFunction("Trigger3D GetTriggerByIndex(uint index)");
    StubMethod("BFEvaluationInfo", "void set_Phase(BFPhase value)");
    StubMethod("BFEvaluationInfo", "BFEvaluationInfo& opAssign(const BFEvaluationInfo&in other)");
    StubMethod("BFEvaluationResponse", "BFEvaluationResponse& opAssign(const BFEvaluationResponse&in other)");
    StubMethod("TM::InputEventBuffer", "EventIndices get_EventIndices() const");
    StubMethod("TM::GameCamera", "string get_NameId() const");

    // vec3 arithmetic (compile-only), mat3 rows as the public plugins read them.
    StubConstructor("vec3", "void f()");
    StubConstructor("vec3", "void f(float value)");
    StubConstructor("vec3", "void f(float x, float y, float z)");
    // Only the operators the public plugins need (an ablation over plugin-check removed
    // the rest): vec3 + vec3, vec3 - vec3, vec3 / float, vec3 *= float.
    StubMethod("vec3", "vec3 opAdd(const vec3&in other) const");
    StubMethod("vec3", "vec3 opSub(const vec3&in other) const");
    StubMethod("vec3", "vec3 opDiv(float value) const");
    StubMethod("vec3", "vec3& opMulAssign(float value)");
    StubMethod("vec3", "bool opEquals(const vec3&in other) const");
    StubMethod("vec3", "float opIndex(uint index) const");
    StubMethod("vec3", "float Length() const");
    StubMethod("vec3", "float LengthSquared() const");
    StubMethod("vec3", "string ToString() const");
    Property("mat3", "vec3 x", 0);
    Property("mat3", "vec3 y", 12);
    Property("mat3", "vec3 z", 24);
    Funcdef("void SettingsPageCallback()");
    Funcdef("void ValidationSettingsCallback()");
    Funcdef("BFEvaluationResponse@ BruteforceEvaluationCallback(SimulationManager@ simManager, const BFEvaluationInfo&in info)");
    Funcdef("void BruteforceSettingsCallback()");
    StubFactory("SimulationStateFile", "SimulationStateFile@ f()");
    StubMethod("SimulationStateFile", "bool Save(const string&in path, string&out error)");
    StubMethod("SimulationStateFile", "bool Load(const string&in path, string&out error)");
    StubMethod("SimulationStateFile", "bool CaptureCurrentState(SimulationManager@ simManager, bool force = false)");
    StubFactory("BFEvaluationResponse", "BFEvaluationResponse@ f()");
    StubMethod("BFEvaluationResponse", "BFEvaluationDecision get_Decision()");
    StubMethod("BFEvaluationResponse", "void set_Decision(BFEvaluationDecision value)");
    StubFactory("BFEvaluationInfo", "BFEvaluationInfo@ f()");
    StubMethod("BFEvaluationInfo", "int get_Iterations() const");
    StubMethod("BFEvaluationInfo", "BFPhase get_Phase() const");
    StubFactory("SimulationResult", "SimulationResult@ f()");
    StubConstructor("Trigger3D", "void f(const vec3&in position, const vec3&in size)");
    StubMethod("Trigger3D", "vec3 get_Position() const");
    StubMethod("Trigger3D", "vec3 get_Size() const");
    StubMethod("Trigger3D", "bool ContainsPoint(const vec3&in point) const");
    StubFunction("Trigger3D GetTrigger(uint id)");
    StubFunction("uint SetTrigger(const Trigger3D&in trigger, uint id = 0)");
    StubFunction("bool RemoveTrigger(uint id)");
    StubFunction("array<int>@ GetTriggerIds()");
    StubMethod("TM::InputEventBuffer", "uint get_Length() const");
    StubMethod("TM::InputEventBuffer", "TM::InputEvent& opIndex(uint index)");
    StubMethod("TM::InputEventBuffer", "array<uint>@ Find(int time, InputType type)");
    StubMethod("TM::InputEventBuffer", "void Add(int time, InputType type, int value)");
    StubMethod("TM::InputEventBuffer", "void Add(const TM::InputEvent&in event)");
    StubMethod("TM::InputEventBuffer", "void RemoveAt(uint index, uint count = 1)");
    StubMethod("TM::InputEventBuffer", "void Clear()");
    StubMethod("TM::InputEventBuffer", "string ToCommandsText(InputFormatFlags flags = InputFormatFlags(0))");
    StubMethod("SimulationManager", "TM::InputEventBuffer@ get_InputEvents()");
    StubMethod("SimulationManager", "int get_TickTime()");
    StubMethod("SimulationManager", "void ResetCamera()");
    StubMethod("SimulationManager", "void SetSimulationTimeLimit(double limit)");
    StubMethod("SimulationManager", "void RemoveStateValidation()");
    StubMethod("SimulationManager", "void ForceFinish()");
    StubFunction("TM::GameState GetCurrentGameState()");
    StubFunction("void ToggleRaceInterface(bool visible)");
    StubFunction("array<TM::VariableInfo@>@ ListVariables()");
    StubFunction("void RegisterSettingsPage(const string&in name, SettingsPageCallback@ callback)");
    StubFunction("void RegisterValidationHandler(const string&in id, const string&in name, ValidationSettingsCallback@ callback = null)");
    StubFunction("void RegisterBruteforceEvaluation(const string&in id, const string&in title, BruteforceEvaluationCallback@ callback, BruteforceSettingsCallback@ renderCallback = null)");

    // Socket writes of plain numbers (Linesight writes int32 message types and race times).
    StubMethod("Net::Socket", "bool Write(int value)");
    StubMethod("Net::Socket", "uint8 ReadUint8()");

    // CommandList as the public plugins use it.
    StubFactory("CommandList", "CommandList@ f(const string&in content)");
    StubMethod("CommandList", "bool Process(CommandListProcessOption option)");
    StubMethod("CommandList", "bool Save(const string&in path)");

    // Math, Text, Time (compile-only).
    Namespace("Math");
    for (const char* t : {"int", "float", "double"}) {
        std::string ty(t);
        StubFunction((ty + " Abs(" + ty + " x)").c_str());
        StubFunction((ty + " Min(" + ty + " a, " + ty + " b)").c_str());
        StubFunction((ty + " Max(" + ty + " a, " + ty + " b)").c_str());
        StubFunction((ty + " Clamp(" + ty + " x, " + ty + " low, " + ty + " high)").c_str());
    }
    for (const char* t : {"float", "double"}) {
        std::string ty(t);
        for (const char* f : {"Sqrt", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Exp", "Log", "Log2", "Log10",
                              "Floor", "Ceil", "Round", "ToRad", "ToDeg"}) {
            StubFunction((ty + " " + f + "(" + ty + " x)").c_str());
        }
        StubFunction((ty + " Pow(" + ty + " x, " + ty + " y)").c_str());
        StubFunction((ty + " Atan2(" + ty + " y, " + ty + " x)").c_str());
    }
    StubFunction("int Rand(int low, int high)");
    StubFunction("float Rand(float low, float high)");
    StubFunction("double get_PI()");
    StubFunction("float Dot(const vec3&in a, const vec3&in b)");
    StubFunction("float Distance(const vec3&in a, const vec3&in b)");
    Namespace("Text");
    StubFunction("double ParseFloat(const string&in text)");
    StubFunction("double ParseFloat(const string&in text, uint&out byteCount)");
    StubFunction("int64 ParseInt(const string&in text)");
    StubFunction("int64 ParseInt(const string&in text, uint base, uint&out byteCount)");
    StubFunction("uint64 ParseUInt(const string&in text)");
    StubFunction("uint64 ParseUInt(const string&in text, uint base, uint&out byteCount)");
    StubFunction("vec3 ParseVec3(const string&in text)");
    StubFunction("string FormatInt(int64 value)");
    StubFunction("string FormatFloat(double value, const string&in pad = \"\", int width = 0, int precision = 3)");
    StubFunction("string Join(const array<string>&in items, const string&in delimiter)");
    Namespace("Time");
    StubFunction("string Format(int64 ms, bool fractions = true, bool forceMinutes = true, bool forceHours = false)");
    StubFunction("string FormatPrecise(double seconds, uint precision = 4)");
    StubFunction("int64 Parse(const string&in text)");
    Namespace("");

    // Log with a severity.
    StubFunction("void log(const string&in message, Severity severity)");
    StubFunction("void print(const string&in message, Severity severity)");

    // UI (compile-only).
    Namespace("UI");
    StubFunction("bool Begin(const string&in name)");
    StubFunction("void End()");
    StubFunction("void SameLine()");
    StubFunction("void Separator()");
    StubFunction("void Text(const string&in text)");
    StubFunction("void TextDimmed(const string&in text)");
    StubFunction("void TextWrapped(const string&in text)");
    StubFunction("void Dummy(const vec2&in size)");
    StubFunction("bool Button(const string&in label)");
    StubFunction("bool Button(const string&in label, const vec2&in size)");
    StubFunction("bool DragFloat3Var(const string&in label, const string&in variable, float speed = 1, float min = 0, float max = 0)");
    StubFunction("bool Checkbox(const string&in label, bool value)");
    StubFunction("bool CheckboxVar(const string&in label, const string&in variable)");
    StubFunction("bool Selectable(const string&in label, bool selected)");
    StubFunction("void PushItemWidth(float width)");
    StubFunction("void PopItemWidth()");
    StubFunction("void PushID(const string&in id)");
    StubFunction("void PopID()");
    StubFunction("bool BeginCombo(const string&in label, const string&in preview)");
    StubFunction("void EndCombo()");
    StubFunction("void BeginDisabled(bool disabled = true)");
    StubFunction("void EndDisabled()");
    StubFunction("bool BeginTabBar(const string&in id)");
    StubFunction("void EndTabBar()");
    StubFunction("bool BeginTabItem(const string&in label)");
    StubFunction("void EndTabItem()");
    StubFunction("bool CollapsingHeader(const string&in label)");
    StubFunction("bool IsItemHovered()");
    StubFunction("bool BeginTooltip()");
    StubFunction("void EndTooltip()");
    StubFunction("int InputInt(const string&in label, int value, int step = 1)");
    StubFunction("int InputIntVar(const string&in label, const string&in variable, int step = 1)");
    StubFunction("float InputFloat(const string&in label, float value, float step = 0)");
    StubFunction("float InputFloatVar(const string&in label, const string&in variable, float step = 0)");
    StubFunction("int InputTimeVar(const string&in label, const string&in variable, int step = 10, int flags = 0)");
    StubFunction("string InputText(const string&in label, const string&in value)");
    StubFunction("string InputTextVar(const string&in label, const string&in variable)");
    StubFunction("bool InputTextMultiline(const string&in label, string&inout value, const vec2&in size)");
    StubFunction("int SliderInt(const string&in label, int value, int min, int max)");
    StubFunction("int SliderIntVar(const string&in label, const string&in variable, int min, int max)");
    StubFunction("float SliderFloatVar(const string&in label, const string&in variable, float min, float max, const string&in format = \"%.3f\")");
    Namespace("");
}

}  // namespace harness
