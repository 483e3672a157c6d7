"""Wire types, codec and task-status state machine shared by the vk-swarm node and hive."""

__version__ = "0.2.0"
