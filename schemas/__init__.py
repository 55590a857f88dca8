"""The ground every process agrees on: event contracts, Meta's webhook shapes, the topic catalogue, routing
keys and the order of statuses. Imports nothing of Aerostic's but itself."""
