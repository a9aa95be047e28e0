/* TMLoader.exe STAND-IN — not TMLoader, not the game.
 *
 * A small Windows program (built with mingw-w64, run under Wine by the tests) that takes
 * TMLoader's command line as `tmstate launch` writes it:
 *
 *     TMLoader.exe run TmForever "<profile>" "/configstring=set tmstate_listen 127.0.0.1:N"
 *
 * and starts TmForever.exe (the stand-in game next to this file) as a child with
 * CreateProcess, as TMLoader starts the real game, then exits: the launcher must find the
 * game as a separate process, not as its own child's pid. The configstring and profile
 * are passed to the child on its command line (the real TMLoader hands them to
 * TMInterface inside the game instead).
 *
 * Exit status: 0 the game was started, 2 a bad command line, 3 CreateProcess failed.
 */
#include <windows.h>
#include <shlwapi.h>
#include <stdio.h>
#include <wchar.h>

#include "standin.h"

static int usage(const wchar_t *why) {
    fwprintf(stderr, L"TMLoader stand-in: %ls\n"
                     L"usage: TMLoader.exe run TmForever \"<profile>\" \"/configstring=set tmstate_listen 127.0.0.1:N\"\n",
             why);
    return 2;
}

int wmain(int argc, wchar_t **argv) {
    if (argc != 5 || wcscmp(argv[1], L"run") != 0) return usage(L"expected 4 arguments: run <game> <profile> /configstring=...");
    if (wcscmp(argv[2], L"TmForever") != 0) return usage(L"only the game TmForever is known");
    const wchar_t *prefix = L"/configstring=";
    if (wcsncmp(argv[4], prefix, wcslen(prefix)) != 0) return usage(L"the 4th argument must start with /configstring=");

    wchar_t game[MAX_PATH];
    DWORD length = GetModuleFileNameW(NULL, game, MAX_PATH);
    if (length == 0 || length >= MAX_PATH) return usage(L"cannot tell where TMLoader.exe is");
    PathRemoveFileSpecW(game);
    if (!PathAppendW(game, GAME_EXE)) return usage(L"path too long");

    /* "<game>" "/profile=<profile>" "/configstring=<commands>" (no quotes inside the values). */
    wchar_t command[4096];
    int written = swprintf(command, sizeof command / sizeof command[0], L"\"%ls\" \"/profile=%ls\" \"%ls\"",
                           game, argv[3], argv[4]);
    if (written < 0) return usage(L"command line too long");

    STARTUPINFOW startup = {0};
    startup.cb = sizeof startup;
    startup.dwFlags = STARTF_USESTDHANDLES;  /* the game's output goes to the same log */
    startup.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    startup.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    startup.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION info = {0};
    /* The environment is inherited (NULL), as TMLoader does: the launcher's marker
     * variable reaches the game. */
    if (!CreateProcessW(NULL, command, NULL, NULL, TRUE, 0, NULL, NULL, &startup, &info)) {
        fwprintf(stderr, L"TMLoader stand-in: CreateProcess(%ls) failed, error %lu\n", command, GetLastError());
        return 3;
    }
    wprintf(L"TMLoader stand-in: started %ls (Windows pid %lu); exiting\n", game, info.dwProcessId);
    fflush(stdout);
    CloseHandle(info.hThread);
    CloseHandle(info.hProcess);
    return 0;
}
