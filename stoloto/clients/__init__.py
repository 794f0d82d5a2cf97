"""Clients of outside services (Stoloto, SET Centrum): the protocols and nothing else."""
