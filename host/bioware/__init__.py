"""bioloop.host.bioware"""
