"""vk-swarm node."""

__version__ = "0.2.0"
