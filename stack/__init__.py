"""What starts things: the local stack (broker, PostgreSQL, Redis and every process as children), topics,
the demo of ``aerostic dev`` and its headless Embedded Signup."""
