"""The agent: registers with the director, reports its host and engine, serves sessions to the director."""
