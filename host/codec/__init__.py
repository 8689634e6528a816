"""bioloop.host.codec"""
