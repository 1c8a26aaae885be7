"""Driver families shipped with the gateway, one sub-package each."""
