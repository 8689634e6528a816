"""bioloop.gateware: Amaranth components of the fast loop."""
