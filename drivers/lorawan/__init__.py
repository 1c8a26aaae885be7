"""LoRaWAN driver: the gateway as its own small network server for Semtech UDP packet
forwarders, with ABP/OTAA, frame-counter rules, class A downlinks and payload codecs.
"""

from .driver import LorawanDriver

__all__ = ["LorawanDriver"]
