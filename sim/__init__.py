"""bioloop.sim: running the gateware under cocotb on Verilator."""
