"""bioloop.host.culture"""
