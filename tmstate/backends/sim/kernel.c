/* The simulator's calibrated car, compiled: n cars, `ticks` ticks each (tmstate.backends.sim.kernel).

   The same arithmetic, in the same order, as SimCars._step_one (the plain-float path of one
   car: calibrated_tick with ScalarOps, the corridor's project_one, walls, the wall behind the
   start, the finish), so a car stepped here is bit for bit the car stepped in Python
   (tests/test_sim.py holds them equal). Built with -ffp-contract=off: no fused multiply-adds,
   which would round differently from Python. */
#include <math.h>
#include <stdint.h>

#define TICK_S 0.01
#define DT 0.01

/* ScalarOps.interp: the table's ends outside it, else linear between xs[j-1] and xs[j]. */
static double interp(double v, const double *xs, const double *ys, int64_t n) {
    if (v <= xs[0]) return ys[0];
    if (v >= xs[n - 1]) return ys[n - 1];
    int64_t lo = 0, hi = n;           /* bisect_right: first j with xs[j] > v */
    while (lo < hi) { int64_t mid = (lo + hi) / 2; if (v < xs[mid]) hi = mid; else lo = mid + 1; }
    int64_t j = lo;
    double x0 = xs[j - 1], x1 = xs[j];
    return ys[j - 1] + (ys[j] - ys[j - 1]) * (v - x0) / (x1 - x0);
}
static double clip(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }
static double pmax(double a, double b) { return b > a ? b : a; }  /* Python max(a, b) */
static double pmin(double a, double b) { return b < a ? b : a; }  /* Python min(a, b) */
static double psign(double v) { return (double)((v > 0.0) - (v < 0.0)); }

/* k (Prepared's constants, the corridor's and the config's): steer_step, yaw_base, yaw_k, yaw_alpha, slip_rate, dead, corner, steer_drag, steer_fade, slide_free,
      slide_drag, drag, coast, brake, gas_brake, reverse, reverse_max, limit, keep, last_length2d, dir0x, dir0z */
void sim_ticks(int64_t n, int64_t ticks, const double *k,
               const double *steer_v, const double *steer_max, int64_t n_steer,
               const double *grip_v, const double *grip_t, int64_t n_grip,
               const double *thrust_v, const double *thrust_t, int64_t n_thrust,
               const double *up_t, const double *down_t,
               const double *seg, int64_t segments, const double *normal,
               const double *steer_a, const double *gas_a, const double *brake_a,
               double *xa, double *za, double *yawa, double *vxa, double *vza, double *omegaa, double *deltaa,
               int64_t *geara, double *shifta, int64_t *indexa, double *alonga, double *laterala,
               int64_t *counta, int64_t *finisheda, int64_t *walla, int64_t *slidinga)
{
    const double steer_step = k[0], yaw_base = k[1], yaw_k = k[2], yaw_alpha = k[3], slip_rate = k[4];
    const double dead = k[5], corner = k[6], steer_drag = k[7], steer_fade = k[8], slide_free = k[9];
    const double slide_drag = k[10], drag = k[11], k_coast = k[12], k_brake = k[13], k_gas_brake = k[14];
    const double k_reverse = k[15], reverse_max = k[16], limit = k[17], keep_wall = k[18], last_length2d = k[19];
    const double dir0x = k[20], dir0z = k[21];
    for (int64_t i = 0; i < n; i++) {
        double x = xa[i], z = za[i], yaw = yawa[i], vx = vxa[i], vz = vza[i], omega = omegaa[i], delta = deltaa[i];
        int64_t gear = geara[i], index = indexa[i], count = counta[i];
        double shift = shifta[i], along = alonga[i], lateral = laterala[i];
        int sliding = 0, hit = (int)walla[i], finished = (int)finisheda[i];
        const double steer = steer_a[i], gas = gas_a[i], brake = brake_a[i];
        /* held_inputs */
        const int gas_on = gas > 0.5;
        const double on = gas_on * (1.0 - brake);
        const int off = on <= 0.0;
        const int coasting = off, braking = brake != 0.0;
        const double coast = coasting ? (double)(off * (brake <= 0.0)) * k_coast : 0.0;
        const double brake_decel = braking ? brake * (gas_on * k_gas_brake + (1.0 - gas_on) * k_brake) : 0.0;
        const double reverse = braking ? brake * -k_reverse : 0.0;
        for (int64_t t = 0; t < ticks; t++) {
            if (finished) { omega = 0.0; sliding = 0; hit = 0; break; }
            double s = sin(yaw), c = cos(yaw);
            double v_long = vx * s + vz * c;
            double v_lat = vx * c - vz * s;
            double speed = fabs(v_long);
            double target = steer * interp(speed, steer_v, steer_max, n_steer);
            delta = delta + clip(target - delta, -steer_step, steer_step);
            double demand = v_long * tan(delta) / (yaw_base + yaw_k * v_long * v_long);
            omega = omega + (demand - omega) * yaw_alpha;
            double grip = interp(speed, grip_v, grip_t, n_grip);
            double a_lat = clip(v_lat * -slip_rate, -grip, grip);
            double thrust = on * (double)(shift <= 0.0) * interp(speed, thrust_v, thrust_t, n_thrust);
            double slip = fabs(v_lat);
            double resist = drag * v_long * v_long + corner * fabs(v_long * omega);
            resist = resist + steer_drag * fabs(delta) * pmax(1.0 - speed * steer_fade, 0.0);
            if (slip > slide_free) resist = resist + slide_drag * clip((slip - slide_free) * 0.5, 0.0, 1.0);
            if (coasting) resist = resist + coast;
            if (braking) resist = resist + (double)(v_long > 0.0) * brake_decel;
            resist = pmin(resist, speed * (1.0 / TICK_S));
            double a_long = thrust - psign(v_long) * resist;
            if (braking) a_long = a_long + (double)((v_long <= 0.05) * (v_long > -reverse_max)) * reverse;
            int up = speed > up_t[gear];
            int down = speed < down_t[gear];
            gear = gear + up - down;
            shift = up ? dead : pmax(shift - TICK_S, 0.0);
            double lx = vx + a_lat * c * TICK_S, lz = vz - a_lat * s * TICK_S;
            double keep = sqrt((vx * vx + vz * vz) / pmax(lx * lx + lz * lz, 1e-12));
            double ax = ((lx * keep - vx) * (1.0 / TICK_S)) + a_long * s;
            double az = ((lz * keep - vz) * (1.0 / TICK_S)) + a_long * c;
            sliding = slip > 1.0;
            vx += ax * DT; vz += az * DT; yaw += omega * DT; x += vx * DT; z += vz * DT;
            count += 1;
            /* project_one */
            int64_t lo = index - 2 < 0 ? 0 : index - 2, hi = index + 6 > segments - 1 ? segments - 1 : index + 6;
            double best_d2 = INFINITY, best_along = 0.0, best_lateral = 0.0; int64_t best_j = 0;
            for (int64_t j = lo; j <= hi; j++) {
                const double *g = seg + 5 * j;
                double px = x - g[0], pz = z - g[1], dx = g[2], dz = g[3], length = g[4];
                double al = px * dx + pz * dz, ex, ez;
                if (al < 0.0) { ex = px; ez = pz; }
                else if (al > length) { ex = px - length * dx; ez = pz - length * dz; }
                else { ex = px - al * dx; ez = pz - al * dz; }
                double d2 = ex * ex + ez * ez;
                if (d2 < best_d2) { best_d2 = d2; best_j = j; best_along = al; best_lateral = px * dz - pz * dx; }
            }
            index = best_j; along = best_along; lateral = best_lateral;
            const double *g = seg + 5 * index;
            if ((along > g[4] && index < segments - 1) || (along < 0.0 && index > 0)) {
                /* past a segment's end: the outside of a corner, whose wall is round about its vertex */
                double t = along > g[4] ? g[4] : 0.0;
                double ex = x - (g[0] + t * g[2]), ez = z - (g[1] + t * g[3]);
                double d = sqrt(ex * ex + ez * ez);
                double over = d - limit;
                hit = over > 0.0;
                if (hit) {
                    double ux = ex / d, uz = ez / d;
                    x -= over * ux; z -= over * uz;
                    double into = pmax(vx * ux + vz * uz, 0.0);
                    vx = (vx - into * ux) * keep_wall;
                    vz = (vz - into * uz) * keep_wall;
                    lateral = (x - g[0]) * g[3] - (z - g[1]) * g[2];
                }
            } else {
                double over = fabs(lateral) - limit;
                hit = over > 0.0;
                if (hit) {
                    double side = lateral > 0.0 ? 1.0 : -1.0;
                    double nx = normal[2 * index] * side, nz = normal[2 * index + 1] * side;
                    x -= over * nx; z -= over * nz;
                    double into = pmax(vx * nx + vz * nz, 0.0);
                    vx = (vx - into * nx) * keep_wall;
                    vz = (vz - into * nz) * keep_wall;
                    lateral = side * limit;
                }
            }
            if (along < 0.0 && index == 0) {
                x += -along * dir0x; z += -along * dir0z;
                double backwards = pmin(vx * dir0x + vz * dir0z, 0.0);
                vx -= backwards * dir0x; vz -= backwards * dir0z;
                along = 0.0; hit = 1;
            }
            finished = index == segments - 1 && along >= last_length2d;
        }
        xa[i] = x; za[i] = z; yawa[i] = yaw; vxa[i] = vx; vza[i] = vz; omegaa[i] = omega; deltaa[i] = delta;
        geara[i] = gear; shifta[i] = shift; indexa[i] = index; alonga[i] = along; laterala[i] = lateral;
        counta[i] = count; finisheda[i] = finished; walla[i] = hit; slidinga[i] = sliding;
    }
}
