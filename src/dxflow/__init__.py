"""dxflow: control a fleet of servers without SSH (engine, agent, director, SDK and CLI)."""

__version__ = "0.1.0"
