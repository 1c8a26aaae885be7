"""First-boot and every-boot commissioning of a gateway card: the site folder a technician put on
the config partition is checked, installed into the data partition and reported in report.txt.

Standard library only: it runs on the image's system Python before the gateway starts, and on a
developer's PC in the tests (tests/images/).
"""
