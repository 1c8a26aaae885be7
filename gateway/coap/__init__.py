"""CoAP northbound: the store-and-forward uplink (push) and the CoAP API server (pull).

Sans-IO cores (``senml``, ``numbers``) are shared by both halves; aiocoap does the I/O.
"""
