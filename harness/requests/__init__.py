"""Everything that builds, sends, retries and keeps a request to a model: the chain of one sample's requests,
the HTTP client, the concurrent engine, provider batches, the response store and the servers' thinking
presets; it may import analysis/, servers/ and the ground modules, never stages/, report/ or the commands."""
