"""One repository module per model; every function takes an asyncpg connection first."""
