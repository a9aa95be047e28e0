// The TMInterface API the harness registers: exactly the symbols in plugins/API.md.
#pragma once

#include <angelscript.h>

#include <string>
#include <vector>

#include "host.hpp"

namespace harness {

// Reference-counted script objects (standard layout, so their members can be registered
// as properties by offset).
struct PluginInfo {
    int refs = 1;
    std::string author;
    std::string name;
    std::string description;
    std::string version;
    void AddRef() { ++refs; }
    void Release() {
        if (--refs == 0) delete this;
    }
};

struct SimulationStateObj {
    int refs = 1;
    std::vector<uint8_t> data;
    void AddRef() { ++refs; }
    void Release() {
        if (--refs == 0) delete this;
    }
};

struct CommandListObj {
    int refs = 1;
    std::string content;
    void AddRef() { ++refs; }
    void Release() {
        if (--refs == 0) delete this;
    }
};

// The script's SimulationManager (one per host, not reference counted).
struct SimManager {
    Host* host = nullptr;
};

// "int ReadInt32()" -> "ReadInt32"; "uint get_Available()" -> "get_Available".
std::string DeclaredName(const std::string& decl);

class ApiRegistrar {
public:
    explicit ApiRegistrar(Host& host) : host_(host), engine_(host.engine_) {}
    bool RegisterAll();
    // The symbols only public plugins use (api_compat.cpp; plugins/API.md's second table).
    void RegisterCompat();
    void RegisterCompatAddOns();

private:
    // Compile-only registrations: one generic stub that does nothing (api_compat.cpp).
    void StubFunction(const char* decl);
    void StubMethod(const char* type, const char* decl);
    void StubFactory(const char* type, const char* decl);
    void StubConstructor(const char* type, const char* decl);
    void StubBehaviour(const char* type, AngelScript::asEBehaviours behaviour, const char* decl, const char* kind);

    void Namespace(const std::string& ns);
    void RefType(const char* name, bool counted);
    void ValueType(const char* name, int size, AngelScript::asDWORD traits);
    void Factory(const char* type, const char* decl, const AngelScript::asSFuncPtr& fn);
    void Constructor(const char* type, const char* decl, const AngelScript::asSFuncPtr& fn);
    void RefCounting(const char* type, const AngelScript::asSFuncPtr& addRef,
                     const AngelScript::asSFuncPtr& release);
    void Method(const char* type, const char* decl, const AngelScript::asSFuncPtr& fn,
                AngelScript::asDWORD conv = AngelScript::asCALL_CDECL_OBJLAST);
    void Property(const char* type, const char* decl, int offset);
    void Function(const char* decl, const AngelScript::asSFuncPtr& fn);
    void Enum(const char* name);
    void EnumValue(const char* type, const char* name, int value);
    void Funcdef(const char* decl);
    void Note(const std::string& symbol, const std::string& kind, const std::string& decl);
    std::string Qualified(const std::string& name) const;
    void Check(int r, const std::string& what);

    Host& host_;
    AngelScript::asIScriptEngine* engine_;
    std::string ns_;
    bool ok_ = true;
};

}  // namespace harness
