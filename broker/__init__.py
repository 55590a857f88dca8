"""The Kafka kit: the acknowledged async producer, the one consumer configuration and commit, batched reads,
the stream runtime (consume a batch, handle it, wait for the acks, save state, commit) and the offset
tracker for consumers that finish records out of order; and a worker process's lifecycle (stopping on
signals within a bound, background loops that are restarted when they fail), with the runtime's and
producer's Prometheus metrics and the small server every process exposes them with. Imports only
``config`` and ``schemas``."""
