"""The built-in demo site: a config template plus peers the demo starts beside the gateway."""
