/* winestandin: shared bits of the TMLoader / TmForever STAND-INS (not the game).
 *
 * The moving test pattern both the stand-in game and the tests know (the tests decode it
 * from X11 captures, tests/test_wine.py):
 *   - rows 0 .. COUNTER_ROWS-1: the frame counter, COUNTER_BITS bits, most significant
 *     first, bit i in columns [i*w/COUNTER_BITS, (i+1)*w/COUNTER_BITS): white = 1, black = 0;
 *   - every other row: BAND_COUNT vertical colour bands, shifted right by
 *     SHIFT_PER_FRAME * counter pixels (mod the width): the pixel in column x has colour
 *     BAND_COLOURS[(((x - shift) mod w) * BAND_COUNT) / w].
 */
#ifndef WINESTANDIN_H
#define WINESTANDIN_H

#define COUNTER_ROWS 8
#define COUNTER_BITS 16
#define BAND_COUNT 4
#define SHIFT_PER_FRAME 4
/* 0xRRGGBB */
static const unsigned int BAND_COLOURS[BAND_COUNT] = {0xFF0000, 0x00FF00, 0x0000FF, 0x0C2238};

#define WINDOW_TITLE L"TrackMania Modded"
#define GAME_EXE L"TmForever.exe"
/* The plugin's address variables in the configstring, as the tmstate plugin reads them:
 * "tmstate_listen ADDRESS:PORT" (what the launcher sends), else "tmstate_port PORT". */
#define LISTEN_VARIABLE "tmstate_listen"
#define PORT_VARIABLE "tmstate_port"
/* Where the relayed plugin (the AngelScript harness on Linux) listens: port + offset. */
#define RELAY_OFFSET_VARIABLE L"TMSTATE_STANDIN_RELAY_OFFSET"

#endif
