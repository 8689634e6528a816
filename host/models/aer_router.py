"""Cycle-exact model of the gateware AERRouter (DESIGN.md §4)."""

from __future__ import annotations

from typing import NamedTuple

from bioloop.host.layouts import LANE_BITS, ROUTE_ENTRY, ROUTED_ENTRY, AERType, Port, pack, unpack
from bioloop.host.parameters import check_addresses, check_fanout
from bioloop.host.aer import pack_one, unpack_one

__all__ = ["AERRouter", "Route", "Routed", "unpack_routed", "pack_route"]


class Route(NamedTuple):
    """One routing-table entry: destination port, target, signed Q8.8 weight."""
    port: Port
    target: int
    weight: int


class Routed(NamedTuple):
    """An entry on the stim port (fields of :data:`bioloop.host.layouts.ROUTED_ENTRY`)."""
    target: int
    weight: int
    address: int
    timestamp: int


def unpack_routed(value: int) -> Routed:
    """Decode a packed :data:`bioloop.host.layouts.ROUTED_ENTRY` (weight signed)."""
    return Routed(**unpack(ROUTED_ENTRY, value))


def pack_route(route: Route) -> int:
    """Encode a table entry as the :data:`bioloop.host.layouts.ROUTE_ENTRY` bits the write port takes."""
    return pack(ROUTE_ENTRY, port=int(route.port), target=route.target, weight=route.weight)


class StepOut(NamedTuple):
    """What one clock edge handed over: input accepted, host word, stim entry."""
    accepted: bool
    host: int | None
    stim: Routed | None


class AERRouter:
    """Model of :class:`bioloop.gateware.aer_router.AERRouter`; one :meth:`step` per clock edge."""

    def __init__(self, n_addresses: int, fanout: int = 16):
        self.n = check_addresses(n_addresses)
        self.fanout = check_fanout(fanout)
        self.table: list[list[Route]] = [[Route(Port.STIM, 0, 0)] * fanout for _ in range(n_addresses)]
        self.counts = [0] * n_addresses
        self.reset()

    def reset(self):
        self.rem = 0
        self.j = 0
        self.busy = 0
        self.p_valid = False
        self.p_word = 0
        self.p_entry = Route(Port.STIM, 0, 0)
        self.h_valid = False
        self.h_word = 0
        self.routed = 0
        self.unmapped = 0

    def set_route(self, address: int, routes) -> None:
        """Write a whole row: up to ``fanout`` (port, target, weight) entries."""
        routes = [Route(Port(p), int(t), int(w)) for p, t, w in routes]
        if not 0 <= address < self.n:
            raise ValueError(f"address {address} outside the table (0..{self.n - 1})")
        if len(routes) > self.fanout:
            raise ValueError(f"{len(routes)} entries for address {address}; fanout is {self.fanout}")
        for k, r in enumerate(routes):
            if not -32768 <= r.weight <= 32767:
                raise ValueError(f"weight {r.weight} of entry {k} does not fit signed Q8.8 (int16)")
            limit = (1 << LANE_BITS) if r.port == Port.STIM else (1 << 20)
            if not 0 <= r.target < limit:
                raise ValueError(f"target {r.target} of entry {k} out of range for port {r.port.name}")
            self.table[address][k] = r
        self.counts[address] = len(routes)

    @property
    def idle(self) -> bool:
        """No fanout in progress and no word held on either port."""
        return not (self.rem or self.p_valid or self.h_valid)

    def ready(self, host_ready: bool = True, stim_ready: bool = True) -> bool:
        """The input's ready at this edge (independent of the input's valid)."""
        p_is_stim = self.p_entry.port == Port.STIM
        h_free = (not self.h_valid) or host_ready
        p_done = self.p_valid and (stim_ready if p_is_stim else h_free)
        advance = (not self.p_valid) or p_done
        return self.rem == 0 and advance and h_free and not (self.p_valid and not p_is_stim)

    def step(self, word: int | None, host_ready: bool = True, stim_ready: bool = True) -> StepOut:
        """Advance one edge with ``word`` offered on the input (None for no valid)."""
        e = self.p_entry
        p_is_stim = e.port == Port.STIM
        h_free = (not self.h_valid) or host_ready
        p_done = self.p_valid and (stim_ready if p_is_stim else h_free)
        advance = (not self.p_valid) or p_done
        accept = word is not None and self.ready(host_ready, stim_ready)

        host_out = self.h_word if (self.h_valid and host_ready) else None
        stim_out = None
        if self.p_valid and p_is_stim and stim_ready:
            a, _, _, ts = unpack_one(self.p_word)
            stim_out = Routed(e.target & ((1 << LANE_BITS) - 1), e.weight, a, ts)
        if p_done:
            self.routed += 1

        routable = False
        if accept:
            a, _, t, _ = unpack_one(word)
            spike = t == AERType.SPIKE
            routable = spike and a < self.n and self.counts[a] > 0
            if spike and not routable:
                self.unmapped += 1

        old_p_word, old_entry = self.p_word, e
        if self.rem and advance:
            a = unpack_one(self.busy)[0]
            self.p_entry = self.table[a][self.j]
            self.p_valid, self.p_word = True, self.busy
            self.rem -= 1
            self.j += 1
        elif routable:
            a = unpack_one(word)[0]
            self.p_entry = self.table[a][0]
            self.p_valid, self.p_word = True, word
            self.rem, self.j, self.busy = self.counts[a] - 1, 1, word
        elif advance:
            self.p_valid = False

        if accept:
            self.h_valid, self.h_word = True, word
        elif p_done and not p_is_stim:
            _, src, _, ts = unpack_one(old_p_word)
            self.h_valid, self.h_word = True, pack_one(old_entry.target, src, AERType.SPIKE, ts)
        elif host_ready:
            self.h_valid = False
        return StepOut(accept, host_out, stim_out)
