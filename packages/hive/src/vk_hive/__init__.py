"""vk-swarm hive."""

__version__ = "0.1.0"
