"""Config models of the two tiers: floe.yaml (pipeline) and platform.yaml (platform)."""
