#!/usr/bin/env python3
"""make hdl: regenerate hdl/ (Verilog of every block, register map views)."""
from bioloop.gateware.export import main

if __name__ == "__main__":
    main()
