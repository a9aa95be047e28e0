// A real loopback TCP socket behind TMInterface's Net::Socket API.
//
// Reads go through a user-space receive buffer, so ReadInt32 and friends cost no syscall;
// Available() tops the buffer up with one non-blocking recv(). When a script keeps polling
// an empty socket, the first 250 us answer at once, yielding the CPU between calls (a quick
// reply needs no wake-up), then each call may wait in poll() for up to 1 ms, so wait loops
// do not burn a core (kSpinTime, kPollWaitMs in net.cpp).
// Write() sends at once (the plugin turns TCP_NODELAY on).
#pragma once

#include <angelscript.h>
#include <angelscript/scriptarray.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace harness {

using AngelScript::CScriptArray;

class NetSocket {
public:
    NetSocket() = default;
    NetSocket(const NetSocket&) = delete;
    NetSocket& operator=(const NetSocket&) = delete;

    void AddRef() { ++refs_; }
    void Release();

    bool Listen(const std::string& host, uint16_t port);
    NetSocket* Accept(uint32_t timeoutMs);
    void SetNoDelay(bool on);
    uint32_t Available();
    std::string RemoteIP() const { return remoteIp_; }
    int32_t ReadInt32();
    uint32_t ReadUint32();
    float ReadFloat();
    CScriptArray* ReadBytes(uint32_t count);
    std::string ReadString(uint32_t count);
    bool WriteBytes(const CScriptArray& data);
    bool WriteString(const std::string& data);

    // True while the plugin holds an accepted client socket it has written to and that
    // the peer has not closed: the harness runs the race clock only then (README.md).
    static bool AnyActiveClient();
    // When a socket last received or sent bytes; the harness runs the clock at full speed
    // only while this is recent, otherwise at real-time pace (an idle plugin costs ~no CPU).
    static std::chrono::steady_clock::time_point LastActivity() { return lastActivity_; }
    // True once any socket listens (the harness exits if the plugin never starts listening).
    static bool anyListening;
    // Set by the SIGTERM handler; polling functions then abort the running script.
    static volatile int stopRequested;

private:
    ~NetSocket();
    bool Need(size_t bytes, const char* what);
    size_t FillNonBlocking();
    bool SendAll(const void* data, size_t size);

    static std::chrono::steady_clock::time_point lastActivity_;
    static int listenerFd_;  // the plugin's listening socket: a blocked Write checks it for newcomers

    int refs_ = 1;
    int fd_ = -1;
    bool accepted_ = false;
    bool wrote_ = false;
    bool peerClosed_ = false;
    std::string remoteIp_;
    std::vector<uint8_t> buffer_;  // storage; the unread bytes are [head_, tail_)
    size_t head_ = 0;
    size_t tail_ = 0;
    std::chrono::steady_clock::time_point lastEmpty_{};
    std::chrono::steady_clock::time_point emptySince_{};
    bool lastWasEmpty_ = false;
};

}  // namespace harness
