"""pytest plugin: fixtures that run a real pybroker cluster for a test."""
