"""bioloop.host.models"""
