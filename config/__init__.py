"""The ground floor: each process's settings and the shapes of every Redis key.

Everything may import this package; it imports nothing of Aerostic's.
"""
