"""Local servers the tests start on loopback: moto, PostgreSQL, the Graph-compatible server."""
