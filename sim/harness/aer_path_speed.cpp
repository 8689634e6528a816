// Free-running C++ harness for the Verilated AERPath: raw Verilator speed
// Verilator escapes the double underscore of flattened Amaranth port names as ___05F.
// without cocotb (make bench). Drives one random beat per cycle with ready high.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "Vaer_path.h"
#include "verilated.h"

int main(int argc, char** argv) {
    const uint64_t cycles = argc > 1 ? strtoull(argv[1], nullptr, 10) : 2000000;
    VerilatedContext ctx;
    Vaer_path top{&ctx};
    top.host___05Fready = 1;
    top.stim___05Fready = 1;
    top.rst = 1;
    for (int i = 0; i < 4; ++i) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    top.rst = 0;
    uint32_t lfsr = 0xACE1u, beat = 0;
    uint64_t words = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t c = 0; c < cycles; ++c) {
        lfsr = lfsr * 1664525u + 1013904223u;
        // mostly small samples, occasionally a large negative excursion
        int16_t lo = (lfsr >> 8) % 97 == 0 ? -20000 : (int16_t)((lfsr >> 16) & 0x3FF);
        int16_t hi = (lfsr >> 4) % 89 == 0 ? -20000 : (int16_t)((lfsr >> 6) & 0x3FF);
        top.samples___05Fvalid = 1;
        top.samples___05Fpayload = (uint64_t)(uint16_t)lo | ((uint64_t)(uint16_t)hi << 16)
                               | ((uint64_t)(beat == 31) << 32);
        top.clk = 0; top.eval();
        if (top.samples___05Fready) beat = (beat + 1) & 31;
        if (top.host___05Fvalid) ++words;
        top.clk = 1; top.eval();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("{\"cycles\": %llu, \"seconds\": %.6f, \"cycles_per_s\": %.1f, \"host_words\": %llu}\n",
           (unsigned long long)cycles, s, cycles / s, (unsigned long long)words);
    return 0;
}
