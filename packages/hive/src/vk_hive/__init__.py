"""vk-swarm hive."""

__version__ = "0.2.0"
