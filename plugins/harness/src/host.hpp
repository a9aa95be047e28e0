// The harness host: the AngelScript engine, TMInterface's console (variables, custom
// commands, command lists), the registered API and the calls into the plugin.
#pragma once

#include <angelscript.h>
#include <angelscript/scriptarray.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "race.hpp"

namespace harness {

using AngelScript::asIScriptContext;
using AngelScript::asIScriptEngine;
using AngelScript::asIScriptFunction;
using AngelScript::asIScriptModule;

// One registered TMInterface symbol, as plugins/API.md lists it.
struct ApiEntry {
    std::string symbol;
    std::string kind;
    std::string declaration;
};

// The script-visible SimulationManager: the race plus the game speed.
struct SimManager;

class Host {
public:
    // Host options that are not the race's (plugins/harness/README.md).
    struct Options {
        bool checkpointAfterRunStep = false;  // OnCheckpointCountChanged after OnRunStep in a tick
        std::string persistFile;              // builtin.txt model: variables kept between sessions
    };

    Host(RaceConfig config, Options options);
    ~Host();
    Host(const Host&) = delete;
    Host& operator=(const Host&) = delete;

    // Registers the API (plugins/API.md); false if a registration failed.
    bool RegisterApi();
    // Compiles the plugin; AngelScript's messages go to stderr as file:row:col: ERR: text.
    bool Compile(const std::string& pluginPath);
    // Compile only (plugin-check): global variables are not initialised, since their
    // initialisers may call compile-only stubs (api_compat.cpp).
    void SetCompileOnly() { engine_->SetEngineProperty(AngelScript::asEP_INIT_GLOBAL_VARS_AFTER_BUILD, 0); }
    bool LoadRace(std::string& error) { return race_.Load(error); }

    // TMInterface's callbacks, called as the game calls them.
    void CallGetPluginInfo();
    void CallMain();
    void CallRender();
    void CallOnRunStep();
    void CallOnDisabled();
    bool HasCallback(const char* name) const;

    // The console: "set <variable> <value>" and registered custom commands; ';' separates.
    void Execute(const std::string& commands);
    // The folder `load FILE` reads console scripts from (TMInterface's script_folder,
    // Documents/TMInterface/Scripts); empty = none, and `load` reports an error.
    void SetScriptsFolder(const std::string& folder) { scriptsFolder_ = folder; }
    void RunQueuedCommandLists();

    void Tick();  // one 10 ms tick: race step, then OnCheckpointCountChanged and OnRunStep
    // The game loop at speed N runs 2N ticks per rendered frame (at least 1): a SetSpeed
    // takes effect at the next frame; a RewindToState ends the current frame's ticks.
    void BeginFrame() { speed_ = requestedSpeed_; batchCut_ = false; }
    int TicksThisFrame() const;
    bool BatchCut() const { return batchCut_; }
    void CutBatch() { batchCut_ = true; }
    double Speed() const { return speed_; }
    double RequestedSpeed() const { return requestedSpeed_; }
    // Writes the variables to the persist file (TMInterface saves builtin.txt on exit).
    void SaveVariables() const;

    const std::vector<ApiEntry>& Api() const { return api_; }

    // Used by the registered functions (api.cpp).
    Race& RaceState() { return race_; }
    void SetSpeed(double speed) { requestedSpeed_ = speed < 0 ? 0 : speed; }
    bool InRender() const { return inRender_; }
    uint64_t NowMs() const;
    void RegisterVariable(const std::string& name, double value);
    void RegisterVariable(const std::string& name, const std::string& value);
    double GetVariableDouble(const std::string& name) const;
    std::string GetVariableString(const std::string& name) const;
    bool GetVariableBool(const std::string& name) const { return GetVariableDouble(name) != 0.0; }
    void SetVariable(const std::string& name, double value);
    void SetVariable(const std::string& name, const std::string& value);
    void RegisterCustomCommand(const std::string& name, asIScriptFunction* callback);
    void QueueCommandList(const std::string& content) { queuedLists_.push_back(content); }
    SimManager* Manager() { return manager_.get(); }
    asIScriptEngine* Engine() { return engine_; }

    static Host* current;  // the one host of this process (registered functions use it)

private:
    friend class ApiRegistrar;
    struct Variable {
        bool isString = false;
        double number = 0.0;
        std::string text;
    };

    bool Call(asIScriptFunction* fn, const std::function<void(asIScriptContext*)>& setArgs,
              const std::function<void(asIScriptContext*)>& onResult = {});
    void ExecuteOne(const std::string& command);
    void LoadScript(const std::string& name);
    void ReportException(asIScriptContext* ctx);
    void LoadVariables();
    void CallRaceEvent(const RaceEvent& event);

    Race race_;
    Options options_;
    std::map<std::string, std::string> persisted_;  // name -> value text, from the persist file
    asIScriptEngine* engine_ = nullptr;
    asIScriptContext* ctx_ = nullptr;
    asIScriptModule* module_ = nullptr;
    std::unique_ptr<SimManager> manager_;
    std::vector<ApiEntry> api_;
    std::map<std::string, Variable> variables_;
    std::map<std::string, asIScriptFunction*> commands_;
    std::vector<std::string> queuedLists_;
    std::string scriptsFolder_;
    double speed_ = 1.0;           // in force for the current frame
    double requestedSpeed_ = 1.0;  // the last SetSpeed, in force from the next frame
    bool batchCut_ = false;
    std::vector<RaceEvent> events_;
    bool inRender_ = false;
    std::chrono::steady_clock::time_point start_;
    asIScriptFunction* fnGetPluginInfo_ = nullptr;
    asIScriptFunction* fnMain_ = nullptr;
    asIScriptFunction* fnRender_ = nullptr;
    asIScriptFunction* fnOnRunStep_ = nullptr;
    asIScriptFunction* fnOnCheckpoint_ = nullptr;
    asIScriptFunction* fnOnDisabled_ = nullptr;
    asIScriptFunction* fnOnLap_ = nullptr;
};

// The callbacks the harness calls, as TMInterface declares them.
extern const char* const kCallbackDecls[7];

}  // namespace harness
