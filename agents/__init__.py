"""Human agents: presence, capacity and the assignment of conversations (shared through Redis)."""
