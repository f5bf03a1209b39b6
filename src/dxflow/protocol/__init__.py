"""The wire protocol shared by the SDK, the daemons and the Ansible plugins: no I/O, no HTTP library.

- ``errors``: the one error tree (config, transport/TLS, API errors by status).
- ``chunks``: the engine API's chunked JSON body and its streamed layout.
- ``director_wire``: the director/agent JSON bodies (dcvix-compatible) and their errors.
- ``names``: header, cookie and media-type names.
- ``durations``: Go-style duration strings.
- ``workflows``: workflow naming and definition digests.
"""
