"""bioloop.boards: PYNQ-Z2 platform and overlay packaging."""
