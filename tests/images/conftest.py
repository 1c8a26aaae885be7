"""The image's commissioning code lives in images/commissioning (it is installed into the image,
not into the gateway package); make it importable for these tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "images"))
