"""CoAP devices: sensors read through reusable profiles (SenML, text, JSON/CBOR paths) and
neighbouring gateways observed through their discovery, with PUT writes over OSCORE or DTLS-PSK.
"""

from .driver import CoapDriver

__all__ = ["CoapDriver"]
