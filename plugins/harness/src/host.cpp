// The harness host: engine, console and plugin calls (see host.hpp).
#include "host.hpp"

#include <angelscript/scriptbuilder.h>
#include <angelscript/scriptstdstring.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api.hpp"

namespace harness {

using namespace AngelScript;

Host* Host::current = nullptr;

const char* const kCallbackDecls[7] = {
    "PluginInfo@ GetPluginInfo()",
    "void Main()",
    "void Render()",
    "void OnRunStep(SimulationManager@ simManager)",
    "void OnCheckpointCountChanged(SimulationManager@ simManager, int current, int target)",
    "void OnDisabled()",
    "void OnLapCountChanged(SimulationManager@ simManager, int current, int target)",
};

namespace {

void MessageCallback(const asSMessageInfo* msg, void* /*param*/) {
    const char* type = msg->type == asMSGTYPE_ERROR ? "ERR" : msg->type == asMSGTYPE_WARNING ? "WARN" : "INFO";
    std::fprintf(stderr, "%s:%d:%d: %s: %s\n", msg->section, msg->row, msg->col, type, msg->message);
}

std::string Trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    size_t e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> SplitArgs(const std::string& line) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    bool any = false;
    for (char c : line) {
        if (c == '"') {
            quoted = !quoted;
            any = true;
        } else if ((c == ' ' || c == '\t') && !quoted) {
            if (any) out.push_back(cur);
            cur.clear();
            any = false;
        } else {
            cur += c;
            any = true;
        }
    }
    if (any) out.push_back(cur);
    return out;
}

}  // namespace

Host::Host(RaceConfig config, Options options)
    : race_(std::move(config)), options_(std::move(options)), start_(std::chrono::steady_clock::now()) {
    current = this;
    engine_ = asCreateScriptEngine();
    engine_->SetMessageCallback(asFUNCTION(MessageCallback), nullptr, asCALL_CDECL);
    // TMInterface documents Graphics::CaptureScreenshot(vec2&inout size): an &inout reference
    // to a value type, which AngelScript accepts only with unsafe references allowed.
    engine_->SetEngineProperty(asEP_ALLOW_UNSAFE_REFERENCES, 1);
    // TMInterface documents accessors as get_X() (e.g. TM::PlayerInfo::get_Checkpoints) and
    // plugins read them as properties (.Checkpoints): get_/set_ without the 'property' keyword.
    engine_->SetEngineProperty(asEP_PROPERTY_ACCESSOR_MODE, 2);
    // Public plugins compare string bytes with 'v' and default uint8 parameters to ' ':
    // TMInterface's engine reads single-quoted literals as characters.
    engine_->SetEngineProperty(asEP_USE_CHARACTER_LITERALS, 1);
    RegisterStdString(engine_);
    RegisterScriptArray(engine_, true);
    ctx_ = engine_->CreateContext();
    LoadVariables();
}

// The game renders about 50 frames per second of race time at speed 1 (its 100 Hz
// physics then runs 2 ticks per frame; assumed: TMNF renders at the display's rate), so at
// speed N a frame holds 2N ticks (at least 1, at most 2000).
constexpr double kTicksPerFrameAtSpeed1 = 2.0;

int Host::TicksThisFrame() const {
    if (speed_ <= 0) return 0;
    return static_cast<int>(std::clamp(std::lround(speed_ * kTicksPerFrameAtSpeed1), 1L, 2000L));
}

// The persist file holds one "set <name> <value>" line per variable, as a console would
// take it (TMInterface's builtin.txt format itself is not documented; assumed).
void Host::LoadVariables() {
    if (options_.persistFile.empty()) return;
    std::ifstream in(options_.persistFile);
    std::string line;
    while (std::getline(in, line)) {
        std::vector<std::string> args = SplitArgs(Trim(line));
        if (args.size() >= 2 && args[0] == "set") {
            std::string value;
            for (size_t i = 2; i < args.size(); ++i) value += (i > 2 ? " " : "") + args[i];
            persisted_[args[1]] = value;
        }
    }
}

void Host::SaveVariables() const {
    if (options_.persistFile.empty()) return;
    std::map<std::string, std::string> all = persisted_;
    for (const auto& entry : variables_) {
        if (entry.second.isString) {
            all[entry.first] = entry.second.text;
        } else {
            std::ostringstream out;
            out.precision(17);
            out << entry.second.number;
            all[entry.first] = out.str();
        }
    }
    std::string tmp = options_.persistFile + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        for (const auto& entry : all) out << "set " << entry.first << " \"" << entry.second << "\"\n";
    }
    std::rename(tmp.c_str(), options_.persistFile.c_str());
}

Host::~Host() {
    for (auto& entry : commands_) entry.second->Release();
    commands_.clear();
    if (ctx_ != nullptr) ctx_->Release();
    manager_.reset();
    if (engine_ != nullptr) engine_->ShutDownAndRelease();
    current = nullptr;
}

bool Host::RegisterApi() {
    manager_ = std::make_unique<SimManager>();
    manager_->host = this;
    ApiRegistrar registrar(*this);
    return registrar.RegisterAll();
}

// A plugin is one .as file, or a folder whose .as files (subfolders included) TMInterface
// compiles together as one module (the public plugin folders are laid out so).
std::vector<std::string> PluginSources(const std::string& path) {
    std::vector<std::string> files;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(path, ec)) {
            if (entry.is_regular_file() && entry.path().extension() == ".as") files.push_back(entry.path().string());
        }
        std::sort(files.begin(), files.end());
    } else {
        files.push_back(path);
    }
    return files;
}

bool Host::Compile(const std::string& pluginPath) {
    CScriptBuilder builder;
    if (builder.StartNewModule(engine_, "plugin") < 0) return false;
    std::vector<std::string> files = PluginSources(pluginPath);
    if (files.empty()) {
        std::fprintf(stderr, "%s:0:0: ERR: the plugin folder holds no .as file\n", pluginPath.c_str());
        return false;
    }
    for (const std::string& file : files) {
        if (builder.AddSectionFromFile(file.c_str()) < 0) {
            std::fprintf(stderr, "%s:0:0: ERR: cannot read the plugin file\n", file.c_str());
            return false;
        }
    }
    if (builder.BuildModule() < 0) return false;
    module_ = engine_->GetModule("plugin");
    fnGetPluginInfo_ = module_->GetFunctionByDecl(kCallbackDecls[0]);
    fnMain_ = module_->GetFunctionByDecl(kCallbackDecls[1]);
    fnRender_ = module_->GetFunctionByDecl(kCallbackDecls[2]);
    fnOnRunStep_ = module_->GetFunctionByDecl(kCallbackDecls[3]);
    fnOnCheckpoint_ = module_->GetFunctionByDecl(kCallbackDecls[4]);
    fnOnDisabled_ = module_->GetFunctionByDecl(kCallbackDecls[5]);
    fnOnLap_ = module_->GetFunctionByDecl(kCallbackDecls[6]);
    if (fnGetPluginInfo_ == nullptr) {
        std::fprintf(stderr, "%s:0:0: ERR: the plugin has no '%s' (TMInterface requires it)\n", pluginPath.c_str(),
                     kCallbackDecls[0]);
        return false;
    }
    return true;
}

bool Host::HasCallback(const char* name) const {
    return module_ != nullptr && module_->GetFunctionByName(name) != nullptr;
}

uint64_t Host::NowMs() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count());
}

void Host::ReportException(asIScriptContext* ctx) {
    const char* section = "";
    int column = 0;
    int row = ctx->GetExceptionLineNumber(&column, &section);
    asIScriptFunction* fn = ctx->GetExceptionFunction();
    std::fprintf(stderr, "%s:%d:%d: script exception in %s: %s\n", section ? section : "?", row, column,
                 fn ? fn->GetDeclaration() : "?", ctx->GetExceptionString());
}

bool Host::Call(asIScriptFunction* fn, const std::function<void(asIScriptContext*)>& setArgs,
                const std::function<void(asIScriptContext*)>& onResult) {
    if (fn == nullptr) return true;
    asIScriptContext* ctx = asGetActiveContext();
    const bool nested = ctx != nullptr;
    if (nested) {
        if (ctx->PushState() < 0) return false;
    } else {
        ctx = ctx_;
    }
    ctx->Prepare(fn);
    if (setArgs) setArgs(ctx);
    int r = ctx->Execute();
    if (r == asEXECUTION_FINISHED) {
        if (onResult) onResult(ctx);
    } else if (r == asEXECUTION_EXCEPTION) {
        ReportException(ctx);
    } else if (r == asEXECUTION_ABORTED) {
        std::fprintf(stderr, "[harness] %s aborted (stopping)\n", fn->GetName());
    }
    if (nested) ctx->PopState();
    return r == asEXECUTION_FINISHED;
}

void Host::CallGetPluginInfo() {
    Call(fnGetPluginInfo_, {}, [](asIScriptContext* ctx) {
        auto* info = static_cast<PluginInfo*>(ctx->GetReturnObject());
        if (info != nullptr) {
            std::fprintf(stderr, "[harness] plugin: %s %s by %s - %s\n", info->name.c_str(), info->version.c_str(),
                         info->author.c_str(), info->description.c_str());
        }
    });
}

void Host::CallMain() { Call(fnMain_, {}); }

void Host::CallRender() {
    inRender_ = true;
    Call(fnRender_, {});
    inRender_ = false;
}

void Host::CallOnRunStep() {
    Call(fnOnRunStep_, [this](asIScriptContext* ctx) { ctx->SetArgObject(0, manager_.get()); });
}

void Host::CallOnDisabled() { Call(fnOnDisabled_, {}); }

void Host::CallRaceEvent(const RaceEvent& event) {
    if (!event.lap) race_.BeginFinishHook();
    Call(event.lap ? fnOnLap_ : fnOnCheckpoint_, [this, &event](asIScriptContext* ctx) {
        ctx->SetArgObject(0, manager_.get());
        ctx->SetArgDWord(1, static_cast<asDWORD>(event.current));
        ctx->SetArgDWord(2, static_cast<asDWORD>(event.target));
    });
    race_.EndFinishHook();
}

void Host::Tick() {
    events_.clear();
    race_.Tick(events_);
    std::vector<RaceEvent> events;
    events.swap(events_);
    if (!options_.checkpointAfterRunStep) {
        for (const RaceEvent& e : events) CallRaceEvent(e);
    }
    CallOnRunStep();
    if (options_.checkpointAfterRunStep) {
        for (const RaceEvent& e : events) CallRaceEvent(e);
    }
}

// TMInterface keeps an existing value, and a variable saved in builtin.txt comes back
// with the value it had when the game closed (D-set).
void Host::RegisterVariable(const std::string& name, double value) {
    if (variables_.count(name) != 0) return;
    if (commands_.count(name) != 0) {
        std::fprintf(stderr, "[console] cannot register variable %s: a command has that name\n", name.c_str());
        return;
    }
    Variable v;
    v.number = value;
    auto kept = persisted_.find(name);
    if (kept != persisted_.end()) {
        char* end = nullptr;
        double number = std::strtod(kept->second.c_str(), &end);
        if (!kept->second.empty() && *end == '\0') v.number = number;
    }
    variables_[name] = v;
}

void Host::RegisterVariable(const std::string& name, const std::string& value) {
    if (variables_.count(name) != 0) return;
    if (commands_.count(name) != 0) {
        std::fprintf(stderr, "[console] cannot register variable %s: a command has that name\n", name.c_str());
        return;
    }
    Variable v;
    v.isString = true;
    v.text = value;
    auto kept = persisted_.find(name);
    if (kept != persisted_.end()) v.text = kept->second;
    variables_[name] = v;
}

void Host::SetVariable(const std::string& name, double value) {
    auto it = variables_.find(name);
    if (it == variables_.end()) {
        std::fprintf(stderr, "[console] Unknown variable: %s\n", name.c_str());
        return;
    }
    if (it->second.isString) {
        std::ostringstream out;
        out << value;
        it->second.text = out.str();
    } else {
        it->second.number = value;
    }
}

void Host::SetVariable(const std::string& name, const std::string& value) {
    auto it = variables_.find(name);
    if (it == variables_.end()) {
        std::fprintf(stderr, "[console] Unknown variable: %s\n", name.c_str());
        return;
    }
    if (it->second.isString) {
        it->second.text = value;
    } else {
        char* end = nullptr;
        double number = std::strtod(value.c_str(), &end);
        if (!value.empty() && *end == '\0') it->second.number = number;
    }
}

double Host::GetVariableDouble(const std::string& name) const {
    auto it = variables_.find(name);
    return it == variables_.end() || it->second.isString ? 0.0 : it->second.number;
}

std::string Host::GetVariableString(const std::string& name) const {
    auto it = variables_.find(name);
    if (it == variables_.end()) return std::string();
    if (it->second.isString) return it->second.text;
    std::ostringstream out;
    out << it->second.number;
    return out.str();
}

// `load FILE`: TMInterface loads an input script from its script folder; lines without a
// time prefix are immediate commands, run at once ("script files as config files"). The
// harness runs those and ignores timed input lines (it does not replay input scripts).
void Host::LoadScript(const std::string& name) {
    if (scriptsFolder_.empty() || name.empty() || name.find('/') != std::string::npos) {
        std::fprintf(stderr, "[console] load: cannot load '%s' (no script folder, or not a plain file name)\n",
                     name.c_str());
        return;
    }
    std::ifstream in(scriptsFolder_ + "/" + name);
    if (!in) {
        std::fprintf(stderr, "[console] load: %s not found in the script folder\n", name.c_str());
        return;
    }
    std::string line;
    while (std::getline(in, line)) {
        line = Trim(line);
        if (line.empty() || line[0] == '#' || std::isdigit(static_cast<unsigned char>(line[0]))) continue;
        Execute(line);
    }
}

void Host::RegisterCustomCommand(const std::string& name, asIScriptFunction* callback) {
    if (variables_.count(name) != 0) {  // one console namespace for commands and variables (assumed)
        std::fprintf(stderr, "[console] cannot register command %s: a variable has that name\n", name.c_str());
        callback->Release();
        return;
    }
    auto it = commands_.find(name);
    if (it != commands_.end()) it->second->Release();
    commands_[name] = callback;
}

void Host::Execute(const std::string& commands) {
    std::stringstream in(commands);
    std::string one;
    while (std::getline(in, one, ';')) {
        one = Trim(one);
        if (!one.empty()) ExecuteOne(one);
    }
}

void Host::ExecuteOne(const std::string& command) {
    std::vector<std::string> args = SplitArgs(command);
    if (args.empty()) return;
    if (args[0] == "load") {
        LoadScript(args.size() > 1 ? args[1] : std::string());
        return;
    }
    if (args[0] == "unload") return;  // no input script is ever replayed by the harness
    if (args[0] == "set") {
        if (args.size() < 2) {
            std::fprintf(stderr, "[console] set: expected 'set <variable> <value>'\n");
            return;
        }
        auto it = variables_.find(args[1]);
        if (it == variables_.end()) {
            std::fprintf(stderr, "[console] Unknown variable: %s\n", args[1].c_str());
            return;
        }
        std::string value;
        for (size_t i = 2; i < args.size(); ++i) value += (i > 2 ? " " : "") + args[i];
        if (it->second.isString) {
            it->second.text = value;
        } else {
            char* end = nullptr;
            double number = std::strtod(value.c_str(), &end);
            if (value.empty() || *end != '\0') {
                std::fprintf(stderr, "[console] set %s: '%s' is not a number\n", args[1].c_str(), value.c_str());
                return;
            }
            it->second.number = number;
        }
        return;
    }
    if (args[0] == "map") {  // TMInterface's console loads a map (N: `map NAME.Challenge.Gbx`)
        if (args.size() < 2) {
            std::fprintf(stderr, "[console] map: expected 'map <name>.Challenge.Gbx'\n");
            return;
        }
        race_.LoadMap(args[1]);
        std::fprintf(stderr, "[console] map %s loaded\n", args[1].c_str());
        return;
    }
    auto cmd = commands_.find(args[0]);
    if (cmd == commands_.end()) {
        std::fprintf(stderr, "[console] Unknown command: %s\n", args[0].c_str());
        return;
    }
    asITypeInfo* stringArray = engine_->GetTypeInfoByDecl("array<string>");
    CScriptArray* list = CScriptArray::Create(stringArray, static_cast<asUINT>(args.size() - 1));
    for (size_t i = 1; i < args.size(); ++i) *static_cast<std::string*>(list->At(static_cast<asUINT>(i - 1))) = args[i];
    std::string line = command;
    Call(cmd->second, [&](asIScriptContext* ctx) {
        ctx->SetArgDWord(0, static_cast<asDWORD>(-1));
        ctx->SetArgDWord(1, static_cast<asDWORD>(-1));
        ctx->SetArgObject(2, &line);
        ctx->SetArgObject(3, list);
    });
    list->Release();
}

void Host::RunQueuedCommandLists() {
    std::vector<std::string> lists;
    lists.swap(queuedLists_);
    for (const std::string& content : lists) {
        std::stringstream in(content);
        std::string line;
        while (std::getline(in, line)) Execute(line);
    }
}

}  // namespace harness
