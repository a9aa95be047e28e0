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
    explicit Host(RaceConfig config);
    ~Host();
    Host(const Host&) = delete;
    Host& operator=(const Host&) = delete;

    // Registers the API (plugins/API.md); false if a registration failed.
    bool RegisterApi();
    // Compiles the plugin; AngelScript's messages go to stderr as file:row:col: ERR: text.
    bool Compile(const std::string& pluginPath);
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

    void Tick();  // one 10 ms tick: race step, OnCheckpointCountChanged, OnRunStep
    double Speed() const { return speed_; }

    const std::vector<ApiEntry>& Api() const { return api_; }

    // Used by the registered functions (api.cpp).
    Race& RaceState() { return race_; }
    void SetSpeed(double speed) { speed_ = speed < 0 ? 0 : speed; }
    bool InRender() const { return inRender_; }
    uint64_t NowMs() const;
    void RegisterVariable(const std::string& name, double value);
    void RegisterVariable(const std::string& name, const std::string& value);
    double GetVariableDouble(const std::string& name) const;
    void SetVariable(const std::string& name, const std::string& value);
    std::string GetVariableString(const std::string& name) const;
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

    Race race_;
    asIScriptEngine* engine_ = nullptr;
    asIScriptContext* ctx_ = nullptr;
    asIScriptModule* module_ = nullptr;
    std::unique_ptr<SimManager> manager_;
    std::vector<ApiEntry> api_;
    std::map<std::string, Variable> variables_;
    std::map<std::string, asIScriptFunction*> commands_;
    std::vector<std::string> queuedLists_;
    std::string scriptsFolder_;
    double speed_ = 1.0;
    bool inRender_ = false;
    std::chrono::steady_clock::time_point start_;
    asIScriptFunction* fnGetPluginInfo_ = nullptr;
    asIScriptFunction* fnMain_ = nullptr;
    asIScriptFunction* fnRender_ = nullptr;
    asIScriptFunction* fnOnRunStep_ = nullptr;
    asIScriptFunction* fnOnCheckpoint_ = nullptr;
    asIScriptFunction* fnOnDisabled_ = nullptr;
};

// The callbacks the harness calls, as TMInterface declares them.
extern const char* const kCallbackDecls[6];

}  // namespace harness
