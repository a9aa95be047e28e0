/* TmForever.exe STAND-IN — not TrackMania, not TMInterface.
 *
 * Started by the TMLoader stand-in (tmloader.c) under Wine:
 *
 *     TmForever.exe "/profile=<profile>" "/configstring=set tmstate_listen 127.0.0.1:N[; ...]"
 *
 * It does three things the tests check against real Wine:
 *   1. opens a top-level window titled "TrackMania Modded" (what the modded game shows
 *      under TMLoader) with a 320x240 client area, and paints the moving test pattern of
 *      standin.h about 50 times a second, at whatever size the window has;
 *   2. listens on 127.0.0.1:N like the tmstate plugin: N from `set tmstate_listen ADDRESS:N`
 *      (what the launcher sends), else from `set tmstate_port N`;
 *   3. relays every accepted connection, byte for byte, to 127.0.0.1:N+OFFSET, where
 *      OFFSET is the environment variable TMSTATE_STANDIN_RELAY_OFFSET: the tests run the
 *      real plugin (plugins/tmstate.as) in the AngelScript harness there, on Linux, so the
 *      protocol is not written a third time. If nothing listens there, the client is
 *      disconnected (the launcher's handshake then keeps waiting).
 *
 * Exit status: 2 a bad command line or environment, 3 the window or socket failed.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "standin.h"

static unsigned int frame_counter = 0;
static unsigned int *pixels = NULL;
static int pixels_w = 0, pixels_h = 0;
static int relay_port = 0;

static void fail(int status, const char *what) {
    fprintf(stderr, "TmForever stand-in: %s (error %lu)\n", what, GetLastError());
    fflush(stderr);
    ExitProcess(status);
}

/* The pattern of standin.h for frame `counter`, as 32-bit BGRX pixels, rows top-down. */
static void paint_pattern(unsigned int *out, int w, int h, unsigned int counter) {
    int shift = (int)((counter * SHIFT_PER_FRAME) % (unsigned int)w);
    for (int y = 0; y < h; y++) {
        unsigned int *row = out + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            unsigned int colour;
            if (y < COUNTER_ROWS) {
                int bit = (x * COUNTER_BITS) / w;
                colour = ((counter >> (COUNTER_BITS - 1 - bit)) & 1u) ? 0xFFFFFF : 0x000000;
            } else {
                int moved = ((x - shift) % w + w) % w;
                colour = BAND_COLOURS[(moved * BAND_COUNT) / w];
            }
            row[x] = colour;  /* 0x00RRGGBB is BGRX in memory on little-endian */
        }
    }
}

static LRESULT CALLBACK window_proc(HWND window, UINT message, WPARAM wparam, LPARAM lparam) {
    switch (message) {
    case WM_TIMER:
        frame_counter = (frame_counter + 1) & ((1u << COUNTER_BITS) - 1);
        InvalidateRect(window, NULL, FALSE);
        return 0;
    case WM_ERASEBKGND:
        return 1;  /* WM_PAINT covers every pixel */
    case WM_PAINT: {
        PAINTSTRUCT ps;
        HDC dc = BeginPaint(window, &ps);
        RECT client;
        GetClientRect(window, &client);
        int w = client.right, h = client.bottom;
        if (w > 0 && h > 0) {
            if (w != pixels_w || h != pixels_h) {
                free(pixels);
                pixels = malloc((size_t)w * h * 4);
                pixels_w = w;
                pixels_h = h;
            }
            if (pixels != NULL) {
                paint_pattern(pixels, w, h, frame_counter);
                BITMAPINFO bmi = {0};
                bmi.bmiHeader.biSize = sizeof bmi.bmiHeader;
                bmi.bmiHeader.biWidth = w;
                bmi.bmiHeader.biHeight = -h;  /* top-down */
                bmi.bmiHeader.biPlanes = 1;
                bmi.bmiHeader.biBitCount = 32;
                bmi.bmiHeader.biCompression = BI_RGB;
                SetDIBitsToDevice(dc, 0, 0, w, h, 0, 0, 0, h, pixels, &bmi, DIB_RGB_COLORS);
            }
        }
        EndPaint(window, &ps);
        return 0;
    }
    case WM_DESTROY:
        PostQuitMessage(0);
        return 0;
    }
    return DefWindowProcW(window, message, wparam, lparam);
}

/* One relayed connection: bytes both ways until either side closes. */
static DWORD WINAPI relay_thread(LPVOID param) {
    SOCKET client = (SOCKET)(UINT_PTR)param;
    SOCKET upstream = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    struct sockaddr_in target = {0};
    target.sin_family = AF_INET;
    target.sin_port = htons((u_short)relay_port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (upstream == INVALID_SOCKET || connect(upstream, (struct sockaddr *)&target, sizeof target) != 0) {
        fprintf(stderr, "TmForever stand-in: nothing listens on the relay port %d (error %d)\n", relay_port,
                WSAGetLastError());
        fflush(stderr);
        if (upstream != INVALID_SOCKET) closesocket(upstream);
        closesocket(client);
        return 0;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    char buffer[65536];
    for (;;) {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(client, &readable);
        FD_SET(upstream, &readable);
        if (select(0, &readable, NULL, NULL, NULL) <= 0) break;
        SOCKET from = FD_ISSET(client, &readable) ? client : upstream;
        SOCKET to = from == client ? upstream : client;
        int got = recv(from, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        for (int sent = 0; sent < got;) {
            int n = send(to, buffer + sent, got - sent, 0);
            if (n <= 0) goto done;
            sent += n;
        }
    }
done:
    shutdown(client, SD_BOTH);
    shutdown(upstream, SD_BOTH);
    closesocket(client);
    closesocket(upstream);
    return 0;
}

static DWORD WINAPI accept_thread(LPVOID param) {
    SOCKET server = (SOCKET)(UINT_PTR)param;
    for (;;) {
        SOCKET client = accept(server, NULL, NULL);
        if (client == INVALID_SOCKET) continue;
        HANDLE thread = CreateThread(NULL, 0, relay_thread, (LPVOID)(UINT_PTR)client, 0, NULL);
        if (thread == NULL) closesocket(client);
        else CloseHandle(thread);
    }
    return 0;
}

/* The port of `set tmstate_listen ADDRESS:N` (or else of `set tmstate_port N`) in a
 * configstring of ';'-separated commands, or -1. The address is not used: the stand-in
 * always listens on 127.0.0.1. */
static int port_from_configstring(const wchar_t *text) {
    char commands[2048];
    int fallback = -1;
    if (WideCharToMultiByte(CP_UTF8, 0, text, -1, commands, sizeof commands, NULL, NULL) == 0) return -1;
    for (char *command = strtok(commands, ";"); command != NULL; command = strtok(NULL, ";")) {
        char variable[64], value[128];
        if (sscanf(command, " set %63s %127s", variable, value) != 2) continue;
        if (strcmp(variable, LISTEN_VARIABLE) == 0) {
            const char *colon = strrchr(value, ':');
            if (colon != NULL) return atoi(colon + 1);
        } else if (strcmp(variable, PORT_VARIABLE) == 0) {
            fallback = atoi(value);
        }
    }
    return fallback;
}

int wmain(int argc, wchar_t **argv) {
    int port = -1;
    const wchar_t *prefix = L"/configstring=";
    for (int i = 1; i < argc; i++)
        if (wcsncmp(argv[i], prefix, wcslen(prefix)) == 0) port = port_from_configstring(argv[i] + wcslen(prefix));
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "TmForever stand-in: no `set " LISTEN_VARIABLE " ADDRESS:N` in a /configstring= argument\n");
        return 2;
    }
    wchar_t offset_text[32];
    if (GetEnvironmentVariableW(RELAY_OFFSET_VARIABLE, offset_text, 32) == 0) {
        fprintf(stderr, "TmForever stand-in: set TMSTATE_STANDIN_RELAY_OFFSET (the harness listens on port + offset)\n");
        return 2;
    }
    relay_port = port + _wtoi(offset_text);
    if (relay_port <= 0 || relay_port > 65535 || relay_port == port) {
        fprintf(stderr, "TmForever stand-in: relay port %d is not a usable port\n", relay_port);
        return 2;
    }

    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) fail(3, "WSAStartup failed");
    SOCKET server = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((u_short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (server == INVALID_SOCKET || bind(server, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(server, 4) != 0)
        fail(3, "cannot listen on the plugin port");

    HINSTANCE instance = GetModuleHandleW(NULL);
    WNDCLASSW wc = {0};
    wc.lpfnWndProc = window_proc;
    wc.hInstance = instance;
    wc.hCursor = LoadCursor(NULL, IDC_ARROW);
    wc.lpszClassName = L"TmForeverStandIn";
    if (!RegisterClassW(&wc)) fail(3, "RegisterClass failed");
    RECT frame = {0, 0, 320, 240};
    AdjustWindowRect(&frame, WS_OVERLAPPEDWINDOW, FALSE);
    HWND window = CreateWindowW(wc.lpszClassName, WINDOW_TITLE, WS_OVERLAPPEDWINDOW, CW_USEDEFAULT, CW_USEDEFAULT,
                                frame.right - frame.left, frame.bottom - frame.top, NULL, NULL, instance, NULL);
    if (window == NULL) fail(3, "CreateWindow failed");
    ShowWindow(window, SW_SHOWNORMAL);
    UpdateWindow(window);
    SetTimer(window, 1, 20, NULL);

    HANDLE acceptor = CreateThread(NULL, 0, accept_thread, (LPVOID)(UINT_PTR)server, 0, NULL);
    if (acceptor == NULL) fail(3, "CreateThread failed");
    printf("TmForever stand-in: window \"TrackMania Modded\", plugin port 127.0.0.1:%d relayed to 127.0.0.1:%d\n",
           port, relay_port);
    fflush(stdout);

    MSG message;
    while (GetMessageW(&message, NULL, 0, 0) > 0) {
        TranslateMessage(&message);
        DispatchMessageW(&message);
    }
    return 0;
}
