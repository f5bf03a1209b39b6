"""The HTTP server layer shared by the engine, the agent and the director (aiohttp).

- ``responses``: chunked (engine API) and plain JSON (director/agent API) bodies, and their error renderers.
- ``middleware``: one error middleware: ``ApiError`` → its status, a client that went away → quiet, the rest → 500.
- ``bodies``: request bodies with limits (size, nesting, encodings, non-finite numbers → 400/413, never 500).
- ``stream``: the streamed chunked response.
- ``ratelimit``: bounded per-client token buckets.
"""
