"""Code shared by the daemons and the client: files, daemons, crypto helpers, wire format."""
