// Net::Socket for the harness: see net.hpp.
#include "net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace harness {

using namespace AngelScript;

volatile int NetSocket::stopRequested = 0;
bool NetSocket::anyListening = false;
int NetSocket::listenerFd_ = -1;
std::chrono::steady_clock::time_point NetSocket::lastActivity_{};

namespace {

std::vector<NetSocket*>& Clients() {
    static std::vector<NetSocket*> clients;
    return clients;
}

// A script calling Available() again within this interval is taken to be polling in a
// loop, and the call may then wait in poll() for new bytes.
constexpr auto kPollingInterval = std::chrono::microseconds(200);
constexpr int kPollWaitMs = 1;
// For this long a polling script gets non-blocking answers, yielding the CPU between
// calls: a reply within it costs no wake-up from poll() (which on an idle VM costs ~100 us),
// as in TMInterface, where a plugin's wait loop spins on Available(). After it, each call
// may sleep in poll() for up to kPollWaitMs, so a long wait costs ~no CPU.
constexpr auto kSpinTime = std::chrono::microseconds(250);
constexpr int kReadBlockMs = 1000;  // a Read* call short of bytes waits this long at most
constexpr int kWriteWaitSliceMs = 100;  // a Write to a full socket looks for a waiting newcomer this often

void ScriptError(const std::string& message) {
    if (asIScriptContext* ctx = asGetActiveContext()) ctx->SetException(message.c_str());
}

void AbortIfStopping() {
    if (NetSocket::stopRequested != 0) {
        if (asIScriptContext* ctx = asGetActiveContext()) ctx->Abort();
    }
}

}  // namespace

NetSocket::~NetSocket() {
    if (fd_ >= 0 && fd_ == listenerFd_) listenerFd_ = -1;
    if (fd_ >= 0) close(fd_);
    auto& clients = Clients();
    clients.erase(std::remove(clients.begin(), clients.end(), this), clients.end());
}

void NetSocket::Release() {
    if (--refs_ == 0) delete this;
}

bool NetSocket::AnyActiveClient() {
    for (const NetSocket* s : Clients()) {
        if (s->wrote_) return true;
    }
    return false;
}

bool NetSocket::Listen(const std::string& host, uint16_t port) {
    if (fd_ >= 0) return false;
    std::string address = host.empty() || host == "localhost" ? std::string("127.0.0.1") : host;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
        std::fprintf(stderr, "[harness] Net::Socket::Listen: '%s' is not an IPv4 address\n", address.c_str());
        return false;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 8) != 0) {
        std::fprintf(stderr, "[harness] Net::Socket::Listen(%s, %u) failed: %s\n", address.c_str(),
                     static_cast<unsigned>(port), std::strerror(errno));
        close(fd);
        return false;
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    fd_ = fd;
    anyListening = true;
    listenerFd_ = fd;
    std::printf("READY port=%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
    std::fflush(stdout);
    return true;
}

NetSocket* NetSocket::Accept(uint32_t timeoutMs) {
    if (fd_ < 0) return nullptr;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<uint32_t>(timeoutMs, 60000))) <= 0) return nullptr;
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) return nullptr;
    auto* s = new NetSocket();
    s->fd_ = fd;
    s->accepted_ = true;
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    s->remoteIp_ = ip;
    Clients().push_back(s);
    return s;
}

void NetSocket::SetNoDelay(bool on) {
    if (fd_ < 0) return;
    int value = on ? 1 : 0;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value));
}

size_t NetSocket::FillNonBlocking() {
    if (fd_ < 0 || peerClosed_) return 0;
    constexpr size_t kChunk = 65536;
    size_t total = 0;
    while (true) {
        if (head_ == tail_) {
            head_ = tail_ = 0;
        } else if (head_ > 0 && buffer_.size() - tail_ < kChunk) {  // move the unread bytes to the front
            std::memmove(buffer_.data(), buffer_.data() + head_, tail_ - head_);
            tail_ -= head_;
            head_ = 0;
        }
        if (buffer_.size() - tail_ < kChunk) buffer_.resize(tail_ + kChunk);  // grows, rarely
        const size_t room = buffer_.size() - tail_;
        ssize_t n = recv(fd_, buffer_.data() + tail_, room, MSG_DONTWAIT);
        if (n > 0) {
            tail_ += static_cast<size_t>(n);
            total += static_cast<size_t>(n);
            lastActivity_ = std::chrono::steady_clock::now();
            if (static_cast<size_t>(n) < room) break;
            continue;
        }
        if (n == 0) peerClosed_ = true;
        break;  // EAGAIN, error or closed
    }
    return total;
}

uint32_t NetSocket::Available() {
    AbortIfStopping();
    size_t got = FillNonBlocking();
    if (got == 0 && !peerClosed_ && fd_ >= 0) {
        auto now = std::chrono::steady_clock::now();
        if (!lastWasEmpty_ || now - lastEmpty_ >= kPollingInterval) {
            emptySince_ = now;  // a new streak of empty calls
        } else if (now - emptySince_ >= kSpinTime) {
            // The script has been polling for a while: sleep in poll() until bytes come.
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, kPollWaitMs) > 0) got = FillNonBlocking();
        } else {
            sched_yield();  // spinning: let other processes (the client, other games) run
        }
        lastWasEmpty_ = got == 0;
        lastEmpty_ = std::chrono::steady_clock::now();
    } else {
        lastWasEmpty_ = false;
    }
    return static_cast<uint32_t>(tail_ - head_);
}

bool NetSocket::Need(size_t bytes, const char* what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadBlockMs);
    while (tail_ - head_ < bytes) {
        if (FillNonBlocking() > 0) continue;
        if (peerClosed_ || fd_ < 0 || std::chrono::steady_clock::now() >= deadline || stopRequested != 0) {
            ScriptError(std::string("Net::Socket::") + what + ": only " + std::to_string(tail_ - head_) +
                        " of " + std::to_string(bytes) + " bytes arrived");
            return false;
        }
        pollfd p{fd_, POLLIN, 0};
        poll(&p, 1, 10);
    }
    return true;
}

int32_t NetSocket::ReadInt32() {
    if (!Need(4, "ReadInt32")) return 0;
    int32_t v;
    std::memcpy(&v, buffer_.data() + head_, 4);
    head_ += 4;
    return v;
}

uint32_t NetSocket::ReadUint32() {
    if (!Need(4, "ReadUint32")) return 0;
    uint32_t v;
    std::memcpy(&v, buffer_.data() + head_, 4);
    head_ += 4;
    return v;
}

float NetSocket::ReadFloat() {
    if (!Need(4, "ReadFloat")) return 0.0F;
    float v;
    std::memcpy(&v, buffer_.data() + head_, 4);
    head_ += 4;
    return v;
}

CScriptArray* NetSocket::ReadBytes(uint32_t count) {
    asIScriptContext* ctx = asGetActiveContext();
    if (ctx == nullptr || !Need(count, "ReadBytes")) return nullptr;
    static asITypeInfo* byteArray = nullptr;
    if (byteArray == nullptr) byteArray = ctx->GetEngine()->GetTypeInfoByDecl("array<uint8>");
    CScriptArray* out = CScriptArray::Create(byteArray, count);
    if (count > 0) std::memcpy(out->GetBuffer(), buffer_.data() + head_, count);
    head_ += count;
    return out;
}

std::string NetSocket::ReadString(uint32_t count) {
    if (!Need(count, "ReadString")) return std::string();
    std::string s(reinterpret_cast<const char*>(buffer_.data() + head_), count);
    head_ += count;
    return s;
}

bool NetSocket::SendAll(const void* data, size_t size) {
    if (fd_ < 0 || peerClosed_) return false;
    const auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
        ssize_t n = send(fd_, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR && stopRequested == 0) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
            // The peer reads nothing and its buffers are full. Wait for room, but while a
            // new client waits to connect this write fails, as a Write to a vanished peer
            // does: the plugin drops the stuck client and serves the newcomer (a write that
            // would block must not hold the plugin for everyone).
            pollfd fds[2] = {{fd_, POLLOUT, 0}, {listenerFd_, POLLIN, 0}};
            nfds_t count = listenerFd_ >= 0 ? 2 : 1;
            int ready = poll(fds, count, kWriteWaitSliceMs);
            if (stopRequested != 0) return false;
            if (ready > 0 && count == 2 && (fds[1].revents & POLLIN) != 0 && (fds[0].revents & POLLOUT) == 0) {
                std::fprintf(stderr, "[harness] Net::Socket::Write: the peer reads nothing and a new client "
                                     "is waiting: the write fails\n");
                return false;
            }
            continue;
        }
        p += n;
        size -= static_cast<size_t>(n);
    }
    wrote_ = true;
    lastActivity_ = std::chrono::steady_clock::now();
    return true;
}

bool NetSocket::WriteBytes(const CScriptArray& data) {
    return SendAll(const_cast<CScriptArray&>(data).GetBuffer(), data.GetSize());
}

bool NetSocket::WriteString(const std::string& data) { return SendAll(data.data(), data.size()); }

}  // namespace harness
