// The C interface of the compiled Verilator backend (bioloop.sim.verilated_core).
//
// The Verilated top is bioloop_core_sim (sim/harness/core_sim.v): the Vivado-named wrapper
// bioloop_core (hdl/bioloop_core.v around hdl/core.v) with its inputs registered once. Every
// clock edge is driven here: Python calls one function per bus operation (a CSR access, a
// block of sample beats, an idle stretch), never one per edge.
//
// Edges. The handshakes of an edge are the values present before it (valid & ready, the LED
// vector), as the cocotb backend reads them (bioloop.sim.cocotb_bus). Because the inputs are
// registered, the inputs of edge j are written before edge j-1 runs: each step of an operation
// writes the inputs of its next edge, runs the edge before (the "pending" one), and reads the
// handshakes of its next edge from the outputs. An operation ends with the handshakes of its
// last edge read and that edge pending; the next operation runs it after writing its own
// first inputs. Nothing observable depends on the pending edge having run: everything about
// it was read before it. `edges` counts the edges whose handshakes were read.
//
// A CSR access follows cocotbext-axi's AxiLiteMaster: VALID from the second edge of the access,
// held until the handshake, BREADY and RREADY high. Nothing here knows a latency of the core:
// every wait is on a handshake, bounded by the caller's edge budget.
//
// AER output: words go to a bounded buffer (the DMA buffer) until Python pops them. While it is
// full, m_axis_aer_tready is low, as a full DMA holds the stream; no word is ever dropped here,
// and the edges at which the core offered a word the full buffer refused are counted
// (bl_aer_stalls).
//
// Tracing (bl_trace, for the latency figures of docs/benchmarks.md): when on, the shim records
// the edge of every accepted beat, for every AER word the edge it first showed valid and the
// edge it was taken, and every change of an LED. Random AER backpressure (bl_aer_backpressure)
// holds ready low at a given fraction of the edges, as DESIGN.md §6 measures latency under.
//
// Speed (issue 13: the loop's time is mostly here). An edge evaluates the model's root directly
// (the model's eval() adds per-call bookkeeping for other threads, DPI and deleted objects, none
// of which this design has: about 10 % of the library's time), and the falling edge is not
// evaluated (nothing in the design is on it; see `fall`). LED cycles are counted bit-sliced
// (LedCounts), so their cost does not grow with the number of lit lanes.
//
// Built with -DBL_N, -DBL_K, -DBL_F (the Core's parameters) and -DBL_KEY (the build key), so that
// Python can refuse a library built for other parameters (bl_info, bl_key).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "Vbioloop_core_sim.h"
#include "Vbioloop_core_sim___024root.h"
#include "verilated.h"

// Verilator's evaluation of the root, generated beside the model (Vbioloop_core_sim::eval_step
// calls it after its bookkeeping; the first eval() of a new model, in Sim::reset, runs the
// initialisation).
void Vbioloop_core_sim___024root___eval(Vbioloop_core_sim___024root* vlSelf);

#if !defined(BL_N) || !defined(BL_K) || !defined(BL_F) || !defined(BL_KEY)
#error "build with -DBL_N=.. -DBL_K=.. -DBL_F=.. -DBL_KEY=\"..\" (bioloop.sim.verilated_core)"
#endif

#define BL_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// The falling edge. The design has no logic on it, so evaluating it would only record clk = 0 as
// the previous value of the rising-edge trigger. Where the generated root has that member (the
// pinned Verilator names it so), it is set directly; otherwise the falling edge is evaluated.
template <typename R, typename = void>
struct HasClkPrev : std::false_type {};
template <typename R>
struct HasClkPrev<R, std::void_t<decltype(std::declval<R&>().__Vtrigprevexpr___TOP__clk__0)>> : std::true_type {};

template <typename R>
inline void fall(R& r) {
    r.clk = 0;
    if constexpr (HasClkPrev<R>::value) r.__Vtrigprevexpr___TOP__clk__0 = 0;
    else Vbioloop_core_sim___024root___eval(&r);
}

// Per-lane LED counters from the led port, whatever integer type Verilator gave it, counted
// bit-sliced: plane b holds bit b of every lane's count since the last flush, so adding the LED
// vector is a few word operations however many lanes are lit.
constexpr std::size_t LED_W64 = (BL_K + 63) / 64;
constexpr int PLANES = 8;                       // counts up to 255 before a flush
inline void led_words(uint64_t* out, uint64_t v) { out[0] = v; }
template <std::size_t W>
inline void led_words(uint64_t* out, const VlWide<W>& v) {
    for (std::size_t i = 0; i < W; ++i) {
        if (i % 2 == 0) out[i / 2] = v[i];
        else out[i / 2] |= static_cast<uint64_t>(v[i]) << 32;
    }
}

struct LedCounts {
    uint64_t planes[PLANES][LED_W64] = {};
    uint32_t adds = 0;
    template <typename V>
    inline void add(uint32_t* lit, const V& led) {
        uint64_t x[LED_W64];
        led_words(x, led);
        for (std::size_t w = 0; w < LED_W64; ++w) {
            uint64_t c = x[w];
            for (int b = 0; c && b < PLANES; ++b) {
                const uint64_t t = planes[b][w] & c;
                planes[b][w] ^= c;
                c = t;
            }
        }
        if (++adds == (1u << PLANES) - 1) flush(lit);
    }
    // Move the counts into lit (per lane) and clear the planes.
    inline void flush(uint32_t* lit) {
        for (std::size_t w = 0; w < LED_W64; ++w) {
            for (int b = 0; b < PLANES; ++b) {
                uint64_t v = planes[b][w];
                planes[b][w] = 0;
                while (v) {
                    lit[64 * w + __builtin_ctzll(v)] += 1u << b;
                    v &= v - 1;
                }
            }
        }
        adds = 0;
    }
};

// The led port as 32-bit words, lane 0 in bit 0 of word 0.
constexpr std::size_t LED_WORDS = (BL_K + 31) / 32;
inline void read_led(uint32_t* out, uint64_t v) {
    out[0] = static_cast<uint32_t>(v);
    if (LED_WORDS > 1) out[1] = static_cast<uint32_t>(v >> 32);
}
template <std::size_t W>
inline void read_led(uint32_t* out, const VlWide<W>& v) {
    for (std::size_t i = 0; i < W; ++i) out[i] = v[i];
}

struct Sim {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vbioloop_core_sim> top;
    // The inputs the core sees at the next edge (what the input registers hold).
    bool aer_ready = true, tvalid = false, tlast = false, awvalid = false, wvalid = false, arvalid = false;
    uint64_t edges = 0;           // edges whose handshakes were read, since reset release
    uint64_t stalls = 0;          // edges at which a word waited on the full buffer
    uint64_t tlasts = 0;          // accepted sample beats that carried TLAST
    std::vector<uint64_t> words;  // the AER buffer
    std::vector<uint8_t> lasts;
    std::size_t capacity;
    std::vector<uint32_t> lit;    // the running frame's lit cycles per lane (with `counts`)
    LedCounts counts;
    uint32_t frame_beats = 0;     // and its accepted beats
    // random AER backpressure: ready low when the generator falls below `hold`
    uint32_t hold = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    // tracing
    bool tracing = false;
    uint64_t valid_since = 0;     // edge at which the offered word first showed valid (0: none)
    std::vector<uint64_t> beat_edges, word_first, word_taken, led_events;
    uint32_t led_prev[LED_WORDS] = {}, led_now[LED_WORDS] = {};

    explicit Sim(std::size_t cap) : capacity(cap), lit(BL_K, 0) { reset(); }

    // Fresh model: in reset at its first two edges (as the cocotb backend holds it), the
    // second pending; the first edge after it is edge 1 of the session.
    void reset() {
        top.reset();
        ctx.reset(new VerilatedContext);
        top.reset(new Vbioloop_core_sim{ctx.get(), "bioloop_core_sim"});
        Vbioloop_core_sim& t = *top;
        t.rst = 1;
        t.s_axi_bready = t.s_axi_rready = 1;
        t.s_axi_wstrb = 0xF;
        t.m_axis_aer_tready = 1;
        t.clk = 0;
        t.eval();        // the first reset edge is next (rst_q starts high)
        advance();       // run it, rst written for the second
        t.rst = 0;       // ... and released for the edge after
        aer_ready = true;
        tvalid = tlast = awvalid = wvalid = arvalid = false;
        edges = stalls = tlasts = 0;
        words.clear();
        lasts.clear();
        std::fill(lit.begin(), lit.end(), 0);
        counts = LedCounts{};
        frame_beats = 0;
        valid_since = 0;
        beat_edges.clear();
        word_first.clear();
        word_taken.clear();
        led_events.clear();
        read_led(led_prev, top->led);
    }

    inline bool room() {
        if (words.size() >= capacity) return false;
        if (!hold) return true;
        rng ^= rng << 13;         // xorshift64 (Marsaglia 2003)
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return static_cast<uint32_t>(rng >> 32) >= hold;
    }

    // The inputs now on the ports become those of the next edge; the pending edge runs.
    inline void advance() {
        Vbioloop_core_sim& t = *top;
        t.m_axis_aer_tready = room();
        Vbioloop_core_sim___024root& r = *t.rootp;
        fall(r);
        r.clk = 1;
        Vbioloop_core_sim___024root___eval(&r);
        aer_ready = t.m_axis_aer_tready;
        tvalid = t.s_axis_samples_tvalid;
        tlast = t.s_axis_samples_tlast;
        awvalid = t.s_axi_awvalid;
        wvalid = t.s_axi_wvalid;
        arvalid = t.s_axi_arvalid;
    }

    // The AER handshake of the next edge (and, tracing, its LED changes); the edge is then counted.
    inline void take_aer() {
        Vbioloop_core_sim& t = *top;
        const uint64_t edge = edges + 1;
        if (t.m_axis_aer_tvalid) {
            if (tracing && !valid_since) valid_since = edge;
            if (aer_ready) {
                words.push_back(t.m_axis_aer_tdata);
                lasts.push_back(t.m_axis_aer_tlast);
                if (tracing) {
                    word_first.push_back(valid_since);
                    word_taken.push_back(edge);
                    valid_since = 0;
                }
            } else if (words.size() >= capacity) {
                ++stalls;
            }
        }
        if (tracing) {
            read_led(led_now, t.led);
            for (std::size_t i = 0; i < LED_WORDS; ++i) {
                uint32_t changed = led_now[i] ^ led_prev[i];
                while (changed) {
                    const uint32_t b = static_cast<uint32_t>(__builtin_ctz(changed));
                    const uint64_t lane = 32 * i + b;
                    led_events.push_back(edge << 21 | lane << 1 | ((led_now[i] >> b) & 1u));
                    changed &= changed - 1;
                }
                led_prev[i] = led_now[i];
            }
        }
        edges = edge;
    }

    void quiet_inputs() {
        Vbioloop_core_sim& t = *top;
        t.s_axis_samples_tvalid = 0;
        t.s_axis_samples_tlast = 0;
        t.s_axi_awvalid = t.s_axi_wvalid = t.s_axi_arvalid = 0;
    }

    void idle(uint64_t n) {
        quiet_inputs();
        for (uint64_t i = 0; i < n; ++i) {
            advance();
            take_aer();
        }
    }
};

}  // namespace

BL_EXPORT const char* bl_key() { return BL_KEY; }

BL_EXPORT void bl_info(int32_t* n_channels, int32_t* n_lanes, int32_t* fanout) {
    *n_channels = BL_N;
    *n_lanes = BL_K;
    *fanout = BL_F;
}

// A new simulated core whose AER buffer holds `capacity` words, reset (see Sim::reset).
BL_EXPORT void* bl_new(uint64_t capacity) {
    try {
        return new Sim(static_cast<std::size_t>(capacity));
    } catch (...) {
        return nullptr;
    }
}

BL_EXPORT void bl_free(void* h) { delete static_cast<Sim*>(h); }

BL_EXPORT void bl_reset(void* h) { static_cast<Sim*>(h)->reset(); }

BL_EXPORT void bl_idle(void* h, uint64_t n) { static_cast<Sim*>(h)->idle(n); }

BL_EXPORT uint64_t bl_edges(void* h) { return static_cast<Sim*>(h)->edges; }

BL_EXPORT uint64_t bl_aer_stalls(void* h) { return static_cast<Sim*>(h)->stalls; }

BL_EXPORT uint64_t bl_tlasts(void* h) { return static_cast<Sim*>(h)->tlasts; }

BL_EXPORT uint64_t bl_aer_pending(void* h) { return static_cast<Sim*>(h)->words.size(); }

// Move up to `max` words (and their TLAST flags) out of the AER buffer, oldest first.
BL_EXPORT uint64_t bl_aer_pop(void* h, uint64_t* words, uint8_t* lasts, uint64_t max) {
    Sim& s = *static_cast<Sim*>(h);
    const std::size_t n = std::min<std::size_t>(s.words.size(), max);
    std::memcpy(words, s.words.data(), n * sizeof(uint64_t));
    std::memcpy(lasts, s.lasts.data(), n);
    s.words.erase(s.words.begin(), s.words.begin() + static_cast<std::ptrdiff_t>(n));
    s.lasts.erase(s.lasts.begin(), s.lasts.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
}

// One AXI4-Lite access lasting exactly `edges` edges. Returns BRESP/RRESP (0..3), or -1 when the
// response did not come within them. `*data` is the write data in, the read data out.
BL_EXPORT int32_t bl_csr(void* h, int32_t write, uint32_t addr, uint32_t* data, int32_t edges) {
    Sim& s = *static_cast<Sim*>(h);
    Vbioloop_core_sim& t = *s.top;
    bool aw = false, w = false, ar = false;
    int32_t resp = -1;
    s.quiet_inputs();
    t.s_axi_awaddr = addr;
    t.s_axi_araddr = addr;
    t.s_axi_wdata = *data;
    t.s_axi_wstrb = 0xF;
    t.s_axi_bready = t.s_axi_rready = 1;
    for (int32_t e = 1; e <= edges; ++e) {
        const bool drive = e >= 2;
        t.s_axi_awvalid = write && drive && !aw;
        t.s_axi_wvalid = write && drive && !w;
        t.s_axi_arvalid = !write && drive && !ar;
        s.advance();
        if (s.awvalid && t.s_axi_awready) aw = true;
        if (s.wvalid && t.s_axi_wready) w = true;
        if (s.arvalid && t.s_axi_arready) ar = true;
        if (resp < 0 && write && aw && w && t.s_axi_bvalid) resp = t.s_axi_bresp;
        if (resp < 0 && !write && ar && t.s_axi_rvalid) {
            resp = t.s_axi_rresp;
            *data = t.s_axi_rdata;
        }
        s.take_aer();
    }
    return resp;
}

// Offer `n` beats one per edge, each held until the core takes it. TLAST: with `every_frame`, on
// every `per_frame`-th beat; otherwise only on the block's last beat (as a DMA transfer of whole
// frames ends, DESIGN.md §3: the core counts a frame's beats, TLAST is optional). Stops when no
// beat was taken for `timeout` edges. A frame ends, as in the core's Detector, at its
// `per_frame`-th accepted beat or at an accepted beat with TLAST, whichever comes first. For every
// frame that ended, writes its lit cycles per lane (BL_K uint32) to `lit_out` and its cycles
// (accepted beats, including any carried from an earlier call) to `cycles_out`; `*frames` is their
// number. Returns the number of beats taken.
BL_EXPORT uint64_t bl_push(void* h, const uint32_t* beats, uint64_t n, uint32_t per_frame, int32_t every_frame,
                           uint64_t timeout, uint32_t* lit_out, uint32_t* cycles_out, uint64_t* frames) {
    Sim& s = *static_cast<Sim*>(h);
    Vbioloop_core_sim& t = *s.top;
    uint64_t i = 0, waited = 0, closed = 0;
    uint32_t* lit = s.lit.data();
    s.quiet_inputs();
    while (i < n) {
        t.s_axis_samples_tvalid = 1;
        t.s_axis_samples_tdata = beats[i];
        t.s_axis_samples_tlast = every_frame ? (i % per_frame) == per_frame - 1 : i == n - 1;
        s.advance();
        const bool took = t.s_axis_samples_tready;   // valid is high at this edge
        if (took) {
            if (s.tracing) s.beat_edges.push_back(s.edges + 1);
            s.counts.add(lit, t.led);
            ++s.frame_beats;
            s.tlasts += s.tlast;
            waited = 0;
            if (s.tlast || s.frame_beats == per_frame) {
                s.counts.flush(lit);
                std::memcpy(lit_out + closed * BL_K, lit, BL_K * sizeof(uint32_t));
                cycles_out[closed++] = s.frame_beats;
                std::fill(s.lit.begin(), s.lit.end(), 0);
                s.frame_beats = 0;
            }
            ++i;
        }
        s.take_aer();
        if (!took && ++waited >= timeout) break;
    }
    *frames = closed;
    return i;
}

// Hold the AER ready low at random on a fraction `hold` / 2^32 of the edges (0: never).
BL_EXPORT void bl_aer_backpressure(void* h, uint32_t hold, uint64_t seed) {
    Sim& s = *static_cast<Sim*>(h);
    s.hold = hold;
    s.rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

// Start (1) or stop (0) tracing; starting clears what was recorded.
BL_EXPORT void bl_trace(void* h, int32_t on) {
    Sim& s = *static_cast<Sim*>(h);
    s.tracing = on != 0;
    s.beat_edges.clear();
    s.word_first.clear();
    s.word_taken.clear();
    s.led_events.clear();
    s.valid_since = 0;
    read_led(s.led_prev, s.top->led);
}

// Lengths of the trace: 0 beat edges, 1 word edges (first valid and taken), 2 LED events.
BL_EXPORT uint64_t bl_trace_len(void* h, int32_t which) {
    Sim& s = *static_cast<Sim*>(h);
    return which == 0 ? s.beat_edges.size() : which == 1 ? s.word_taken.size() : s.led_events.size();
}

// Copy the trace out: beat edges, the words' first-valid and taken edges, and the LED events,
// each `edge << 21 | lane << 1 | level`; arrays sized by bl_trace_len.
BL_EXPORT void bl_trace_read(void* h, uint64_t* beats, uint64_t* first, uint64_t* taken, uint64_t* leds) {
    Sim& s = *static_cast<Sim*>(h);
    std::copy(s.beat_edges.begin(), s.beat_edges.end(), beats);
    std::copy(s.word_first.begin(), s.word_first.end(), first);
    std::copy(s.word_taken.begin(), s.word_taken.end(), taken);
    std::copy(s.led_events.begin(), s.led_events.end(), leds);
}
